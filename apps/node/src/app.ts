import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyBaseLogger } from 'fastify';
import { StorageState, type Store } from '@replica/storage';
import {
  InvalidRecordError,
  InvalidTableError,
  RecordNotFoundError,
  StorageFailedError,
  StorageFullError,
  TableNotFoundError,
  isRecordId,
  isTableName,
  type RecordValue,
  type ReplicationTransport,
} from '@replica/transport-api';
import type { Config } from './config.js';
import {
  ConfirmTimeoutError,
  InvalidConfirmError,
  RouteNotFoundError,
  NotReadyError,
  ReplicationLagError,
  ShipTimeoutError,
  UnauthorizedError,
  UnavailableError,
  httpStatusOf,
  toReplicaError,
} from './errors.js';
import { adminRoutes, joinRoute } from './admin.js';
import type { JoinSigner } from './join.js';
import { FlowControl } from './flow-control.js';
import { Membership, selfAddress } from './membership.js';
import { Metrics } from './metrics.js';
import { anyObject, errorResponses, openapi } from './openapi.js';
import { ReadinessCheck } from './readiness.js';
import { bearerCheck } from './requests.js';
import { versionOf } from '@replica/transport-api/cli';

export interface AppDeps {
  readonly store: Store;
  readonly transport?: ReplicationTransport | undefined;
  /** A pino logger to use; default: a new one at config.logLevel. */
  readonly logger?: FastifyBaseLogger;
  /** The member list, started by the caller before the transport; default: one over `store` (not started). */
  readonly membership?: Membership;
  /** Signs joining nodes' certificate requests (a node with TLS_CA_KEY); without it `/cluster/join` is off. */
  readonly signer?: JoinSigner | undefined;
}

/** A request id taken from X-Request-Id: up to 128 letters, digits and `._:-`. */
/** The replication mode /status reports: what a benchmark needs to tell the deployments it measures apart. */
function replicationMode(t: Config['transport']): 'direct' | 'per-write' | 'batched' | 'standalone' {
  return t.kind === 'nats' ? t.mode : t.kind === 'plexus' ? 'direct' : 'standalone';
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Paths the node itself uses: not available as table names. */
const RESERVED = new Set(['health', 'ready', 'status', 'metrics', 'cluster', 'docs']);

const VERSION = versionOf(new URL('../package.json', import.meta.url));

type TableParams = { table: string };
type RecordParams = { table: string; id: string };

const idResponse = {
  type: 'object',
  properties: { id: { type: 'string' } },
  required: ['id'],
} as const;

const tableParam = { table: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$', description: 'The table; created by its first write.' } } as const;
const recordParams = { type: 'object', properties: { ...tableParam, id: { type: 'string', minLength: 1, description: 'The record id (at most 512 bytes).' } }, required: ['table', 'id'] } as const;
const recordBody = {
  type: 'object',
  additionalProperties: true,
  properties: { id: { type: 'string', minLength: 1, description: 'The record id (at most 512 bytes); POST makes a UUID when absent, PUT takes it from the path.' } },
  description: 'A JSON object: the record.',
} as const;
const confirmHeader = {
  type: 'object',
  properties: { 'x-replicate-confirm': { type: 'string', pattern: '^[0-9]{1,4}$', description: 'Answer only once this many peers applied the write.' } },
} as const;
/** What a write can be refused for, besides its own checks. */
const WRITE_ERRORS = ['REPLICA_ERR_AUTH_REQUIRED', 'REPLICA_ERR_TABLE_INVALID', 'REPLICA_ERR_CONFIRM_INVALID', 'REPLICA_ERR_CONFIRM_TIMEOUT', 'REPLICA_ERR_SHIP_TIMEOUT', 'REPLICA_ERR_UNAVAILABLE', 'REPLICA_ERR_REPLICATION_LAG', 'REPLICA_ERR_STORE_CLOSED', 'REPLICA_ERR_STORAGE_FULL', 'REPLICA_ERR_STORAGE_FAILED'] as const;

/**
 * Builds the REST node as a fastify instance that is not listening yet. The caller
 * owns `deps.store` and `deps.transport`: closing the app does not close them.
 */
export function buildApp(config: Config, deps: AppDeps): FastifyInstance {
  const { store, transport } = deps;
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: { level: config.logLevel } }),
    bodyLimit: config.bodyLimit,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // POST /Bench/ (the collection URL Harper clients use) is POST /Bench.
    routerOptions: { maxParamLength: 600, ignoreTrailingSlash: true },
    // A request id from X-Request-Id when it is a sane token, else a new UUID; echoed in
    // the response header, error bodies and every log line of the request.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // URLs the router refuses itself (not valid percent-encoded UTF-8, or a path segment
    // over maxParamLength: too long for a table name or an id) name no route. Without
    // this, fastify answers them with its own codes (FST_ERR_BAD_URL, 414 FST_ERR_MAX_PARAM_LENGTH).
    frameworkErrors: (_err, req, reply) => {
      const e = new RouteNotFoundError(req.method, req.url.slice(0, 200));
      void (reply as FastifyReply).code(404).header('x-request-id', req.id).send({ statusCode: 404, code: e.code, error: 'Not Found', message: e.message, requestId: req.id });
    },
  });
  // The route schemas document the API (/openapi.json); the handlers check every input
  // themselves so that each refusal carries a Replica code, so nothing is validated here.
  app.setValidatorCompiler(() => (value) => ({ value }));
  void app.register(openapi, { version: VERSION });
  const membership = deps.membership ?? new Membership(store, transport, { name: store.name, address: selfAddress(config.transport) }, app.log);
  const readiness = new ReadinessCheck(store, transport, membership);
  // Only JSON bodies: without this, fastify would hand text/plain bodies over as strings.
  app.removeContentTypeParser('text/plain');
  // Flow control is measured on the store's clock: the one that dates this node's writes.
  const flow: FlowControl = new FlowControl(store, transport, config.flowControl, {
    now: config.clockOffsetMs === 0 ? Date.now : () => Date.now() + config.clockOffsetMs,
    observer: { flowWaited: (s) => metrics.flowWaited(s), flowRefused: (r) => metrics.flowRefused(r) },
    logger: app.log,
  });
  const metrics = new Metrics(store, transport, VERSION, () => flow.report());
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    // Writes waiting for a peer to catch up would hold the shutdown: they are refused (503), unwritten.
    flow.close();
  });
  app.addHook('onClose', async () => flow.close());

  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });

  app.addHook('onResponse', async (req, reply) => {
    metrics.request(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toReplicaError(err, config.bodyLimit, req.headers['content-type']);
    const statusCode = httpStatusOf[e.code as keyof typeof httpStatusOf] ?? 500;
    // The store logs a full disk or failed storage once; each refused write is not news.
    const expected = e instanceof ConfirmTimeoutError || e instanceof ShipTimeoutError || e instanceof ReplicationLagError || e instanceof UnavailableError || e instanceof NotReadyError || e instanceof StorageFullError || e instanceof StorageFailedError;
    if (statusCode >= 500 && !expected) {
      req.log.error({ err }, 'request failed');
    }
    const body: Record<string, unknown> = { statusCode, code: e.code, error: statusText(statusCode), message: e.message, requestId: req.id };
    if (e instanceof NotReadyError || e instanceof StorageFullError) body['reason'] = e.reason;
    if (e instanceof StorageFullError) {
      if (e.freeBytes !== undefined) body['freeBytes'] = e.freeBytes;
      body['minFreeBytes'] = e.minFreeBytes;
    }
    if (e instanceof ReplicationLagError) {
      Object.assign(body, { reason: e.reason, peer: e.peer, lagMs: Math.round(e.lagMs), limitMs: e.limitMs });
      void reply.header('retry-after', String(e.retryAfterSeconds));
    }
    if (e instanceof ConfirmTimeoutError) {
      body['confirmed'] = e.confirmed;
      body['required'] = e.required;
      void reply.header('x-replicate-confirmed', String(e.confirmed));
    }
    void reply.code(statusCode).send(body);
  });

  app.setNotFoundHandler((req, reply) => {
    const e = new RouteNotFoundError(req.method, req.url.slice(0, 200));
    void reply.code(404).send({ statusCode: 404, code: e.code, error: 'Not Found', message: e.message, requestId: req.id });
  });

  // ---------------------------------------------------------------- operations

  void app.register(async (ops) => {
    ops.get('/health', { schema: { tags: ['operations'], summary: 'Liveness: the process serves and its store can commit (replication state is for /ready)', response: { 200: anyObject, ...errorResponses(['REPLICA_ERR_UNAVAILABLE']) } } }, async (_req, reply) => {
      if (closing || store.closed) throw new UnavailableError('shutting down');
      // Alive while the disk is full (it serves reads and recovers by itself); not once storage failed.
      if (store.storage().state === StorageState.failed) throw new UnavailableError(`${store.storage().reason}`);
      return reply.send({ status: 'ok', node: store.name });
    });

    ops.get('/ready', { schema: { tags: ['operations'], summary: 'Readiness: the transport started and this node caught up with what its peers held when it started', response: { 200: anyObject, ...errorResponses(['REPLICA_ERR_NOT_READY']) } } }, async (_req, reply) => {
      if (closing) throw new NotReadyError('shutting down');
      const r = readiness.check();
      if (!r.ready) throw new NotReadyError(r.reason);
      return reply.send({ status: 'ready', node: store.name });
    });

    ops.get('/status', { schema: { tags: ['operations'], summary: 'The node, its log, cursors, tables and replication state', response: { 200: anyObject, ...errorResponses([]) } } }, async () => ({
      node: store.name,
      transport: transport?.kind ?? 'none',
      // How writes replicate: direct (plexus), per-write or batched (nats publish mode), standalone.
      mode: replicationMode(config.transport),
      durability: store.durability,
      storage: store.storage(),
      flowControl: flow.report(),
      log: { firstSeq: store.firstSeq(), lastSeq: store.lastSeq() },
      cursors: store.cursors(),
      tables: store.tables(),
      // A standalone node has nothing to start: its (absent) replication is as up as it gets.
      replication: transport?.status() ?? { kind: 'none', started: true, peers: [], counters: {}, gauges: {}, refused: {} },
    }));

    ops.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'], response: { 200: { type: 'string', description: 'Prometheus text format 0.0.4' }, ...errorResponses([]) } } }, async (_req, reply) => {
      const text = await metrics.render();
      return reply.type(metrics.contentType).send(text);
    });
  });

  void app.register(adminRoutes(config.adminToken, membership, transport, deps.signer), { prefix: '/cluster' });
  void app.register(joinRoute(membership, deps.signer));

  // ---------------------------------------------------------------- tables

  void app.register(async (tables) => {
    if (config.apiToken !== undefined) {
      const authorized = bearerCheck(config.apiToken);
      tables.addHook('onRequest', async (req) => {
        if (!authorized(req.headers.authorization)) throw new UnauthorizedError();
      });
    }

    const peerCount = () => transport?.peerNames().length ?? 0;

    /** A removed node takes no writes: they would replicate to nobody. */
    const writable = (): void => {
      if (membership.selfRemoved) throw new UnavailableError('this node was removed from the cluster; write to a member');
    };

    /** Parses X-Replicate-Confirm before the write, so a bad header writes nothing. */
    const confirmWanted = (req: FastifyRequest): number => {
      const raw = req.headers['x-replicate-confirm'];
      if (raw === undefined) return 0;
      if (typeof raw !== 'string' || !/^\d{1,4}$/.test(raw)) throw new InvalidConfirmError(`expected a non-negative integer, got ${JSON.stringify(raw)}`);
      const k = Number(raw);
      if (k > 0 && !transport?.waitForReplicas) throw new InvalidConfirmError(`transport ${transport?.kind ?? 'none'} cannot confirm replicas`);
      if (k > peerCount()) throw new InvalidConfirmError(`asks for ${k} peers but this node has ${peerCount()}`);
      return k;
    };

    /**
     * A write that committed after this node learned of its removal may have missed the
     * hand-over of its last writes, which ends once the members confirmed what the log
     * held then: it is acknowledged only if a member confirms it, else refused with 503.
     */
    const handedOver = async (seq: number): Promise<void> => {
      if (!membership.selfRemoved) return;
      const confirmed = transport?.waitForReplicas && transport.peerNames().length > 0 ? await transport.waitForReplicas(seq, 1, config.confirmTimeoutMs) : 0;
      if (confirmed < 1) throw new UnavailableError('this node was removed from the cluster while the write was in flight, and no member confirmed it (it may still reach them); write to a member');
    };

    const confirm = async (reply: FastifyReply, seq: number, k: number): Promise<void> => {
      await handedOver(seq);
      if (transport?.shipped) await shippedWithin(transport.shipped(seq), config.confirmTimeoutMs);
      if (k === 0 || !transport?.waitForReplicas) return;
      const confirmed = await transport.waitForReplicas(seq, k, config.confirmTimeoutMs);
      if (confirmed < k) throw new ConfirmTimeoutError(confirmed, k, config.confirmTimeoutMs);
      void reply.header('x-replicate-confirmed', String(confirmed));
    };

    tables.post<{ Params: TableParams; Body: unknown }>(
      '/:table',
      {
        schema: {
          tags: ['records'],
          summary: 'Insert a record (an existing id is refused)',
          security: [{ apiToken: [] }],
          params: { type: 'object', properties: tableParam, required: ['table'] },
          headers: confirmHeader,
          body: recordBody,
          response: { 201: idResponse, ...errorResponses([...WRITE_ERRORS, 'REPLICA_ERR_RECORD_INVALID', 'REPLICA_ERR_RECORD_EXISTS'], { body: true }) },
        },
      },
      async (req, reply) => {
        const table = checkTable(req.params.table);
        writable();
        const record = asRecord(req.body, undefined);
        const k = confirmWanted(req);
        // Flow control: waits while a live peer is too far behind this node's writes, or refuses (MAX_REPLICATION_LAG_MS).
        await flow.admit();
        const w = await store.put(table, record, 'insert');
        metrics.write('insert');
        await confirm(reply, w.seq, k);
        return reply.code(201).send({ id: record.id });
      },
    );

    tables.put<{ Params: RecordParams; Body: unknown }>(
      '/:table/:id',
      {
        schema: {
          tags: ['records'],
          summary: 'Insert or replace a record',
          security: [{ apiToken: [] }],
          params: recordParams,
          headers: confirmHeader,
          body: recordBody,
          response: { 200: idResponse, 201: idResponse, ...errorResponses([...WRITE_ERRORS, 'REPLICA_ERR_RECORD_INVALID'], { body: true }) },
        },
      },
      async (req, reply) => {
        const table = checkTable(req.params.table);
        writable();
        const record = asRecord(req.body, req.params.id);
        const k = confirmWanted(req);
        await flow.admit();
        const w = await store.put(table, record, 'upsert');
        metrics.write('upsert');
        await confirm(reply, w.seq, k);
        return reply.code(w.created ? 201 : 200).send({ id: record.id });
      },
    );

    const readSchema = {
      tags: ['records'],
      summary: 'Read a record',
      security: [{ apiToken: [] }],
      params: recordParams,
      response: { 200: { ...recordBody, description: 'The record' }, ...errorResponses(['REPLICA_ERR_AUTH_REQUIRED', 'REPLICA_ERR_TABLE_INVALID', 'REPLICA_ERR_TABLE_NOT_FOUND', 'REPLICA_ERR_RECORD_NOT_FOUND']) },
    };
    tables.get<{ Params: RecordParams }>('/:table/:id', { schema: readSchema }, async (req, reply) => {
      const table = checkTable(req.params.table);
      const { id } = req.params;
      if (!store.hasTable(table)) throw new TableNotFoundError(table);
      const value = store.get(table, id);
      if (value === undefined) throw new RecordNotFoundError(table, id);
      return reply.send(value);
    });

    const deleteSchema = {
      tags: ['records'],
      summary: 'Delete a record (a tombstone, replicated like a write)',
      security: [{ apiToken: [] }],
      params: recordParams,
      headers: confirmHeader,
      response: { 204: { type: 'null', description: 'Deleted' }, ...errorResponses([...WRITE_ERRORS, 'REPLICA_ERR_TABLE_NOT_FOUND', 'REPLICA_ERR_RECORD_NOT_FOUND']) },
    };
    tables.delete<{ Params: RecordParams }>('/:table/:id', { schema: deleteSchema }, async (req, reply) => {
      const table = checkTable(req.params.table);
      const { id } = req.params;
      if (!store.hasTable(table)) throw new TableNotFoundError(table);
      writable();
      const k = confirmWanted(req);
      await flow.admit();
      const w = await store.delete(table, id);
      if (w === undefined) throw new RecordNotFoundError(table, id);
      metrics.write('delete');
      await confirm(reply, w.seq, k);
      return reply.code(204).send();
    });
  });

  return app;
}

/** Waits for `shipped`, or throws ShipTimeoutError after `timeoutMs`. */
async function shippedWithin(shipped: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShipTimeoutError(timeoutMs)), timeoutMs);
  });
  try {
    await Promise.race([shipped, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function checkTable(table: string): string {
  if (!isTableName(table)) throw new InvalidTableError(table);
  if (RESERVED.has(table)) throw new InvalidTableError(table, 'the name is reserved for the node itself');
  return table;
}

/** The body as a record: a JSON object whose id is `pathId`, its own valid id, or a new UUID. */
function asRecord(body: unknown, pathId: string | undefined): RecordValue {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidRecordError('the request body must be a JSON object');
  }
  const o = body as Record<string, unknown>;
  if (pathId !== undefined) {
    if (o['id'] !== undefined && o['id'] !== pathId) throw new InvalidRecordError('the body id differs from the id in the path');
    o['id'] = pathId;
  } else if (o['id'] === undefined) {
    o['id'] = randomUUID();
  }
  if (!isRecordId(o['id'])) throw new InvalidRecordError('id must be a non-empty string of at most 512 bytes');
  return o as RecordValue;
}

function statusText(code: number): string {
  return (
    {
      400: 'Bad Request',
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'Not Found',
      409: 'Conflict',
      413: 'Payload Too Large',
      415: 'Unsupported Media Type',
      500: 'Internal Server Error',
      503: 'Service Unavailable',
      504: 'Gateway Timeout',
      507: 'Insufficient Storage',
    } as Record<number, string>
  )[code] ?? 'Error';
}

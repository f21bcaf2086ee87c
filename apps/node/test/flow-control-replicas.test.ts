import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '@replica/storage';
import type { ReplicationTransport } from '@replica/transport-api';
import { freePort } from '@replica/transport-api/ports';
import { eventually, refusingNode, type RefusingNode } from '@replica/transport-api/testing';
import { createCertificateAuthority, createNodeCertificate } from '@replica/certs';
import { natsTransport, startNatsCluster, type PublishMode } from '@replica/transport-nats';
import { plexusTransport } from '@replica/transport-plexus';
import { buildApp } from '../src/app.js';
import type { FlowReport } from '../src/flow-control.js';
import { families, tempDir, testConfig } from './helpers.js';

// Flow control over the real transports: plexus over TLS sockets, nats through two
// clustered nats-servers. Node n1 serves the REST API with MAX_REPLICATION_LAG_MS=200 (hard
// limit 800); its peer n2's store can be made to stop applying anything while staying
// connected (a replica stalled by a full disk: it keeps its connection and its heartbeat or
// announcements), so n2's lag grows by itself. Every wait below is for a state the node
// reports (/status, /metrics), never for a fixed time.

type Kind = 'plexus' | `nats ${PublishMode}`;

interface Pair {
  readonly a: { store: Store; transport: ReplicationTransport; app: FastifyInstance; unguarded: FastifyInstance };
  readonly b: { store: Store; transport: ReplicationTransport; gate: RefusingNode };
  close(): Promise<void>;
}

const TARGET_MS = 200;
const HARD_MS = 800;

async function startPair(kind: Kind, root: string): Promise<Pair> {
  const names = ['n1', 'n2'] as const;
  const stores = names.map((name) => Store.open({ path: join(root, name), nodeName: name, pruneIntervalMs: 0 }));
  const closers: (() => Promise<void>)[] = [async () => void (await Promise.all(stores.map((s) => s.close())))];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    let transports: ReplicationTransport[];
    if (kind === 'plexus') {
      const ca = await createCertificateAuthority('flow-control-ca');
      const peers = [];
      for (const name of names) peers.push({ name, host: '127.0.0.1', port: await freePort() });
      transports = [];
      for (const [i, name] of names.entries()) {
        const creds = await createNodeCertificate(ca, { name });
        const listen = { host: '127.0.0.1', port: peers[i]?.port as number };
        transports.push(plexusTransport({ listen, peers, tls: { ca: ca.cert, ...creds }, heartbeatMs: 200, deadAfterMs: 1500, reconnectMinMs: 20, reconnectMaxMs: 300 }));
      }
    } else {
      const mode = kind === 'nats per-write' ? 'per-write' : 'batched';
      const nats = await startNatsCluster({ names, dir: join(root, 'nats') });
      closers.push(() => nats.stop());
      transports = names.map((name, i) => natsTransport({ servers: nats.servers[i]?.url as string, mode, placement: { cluster: 'replica', tag: name }, discoverIntervalMs: 200 }));
    }
    const [ta, tb] = transports as [ReplicationTransport, ReplicationTransport];
    const [sa, sb] = stores as [Store, Store];
    closers.push(async () => void (await Promise.all(transports.map((t) => t.stop()))));
    const gate = refusingNode(sb);
    await Promise.all([ta.start(sa), tb.start(gate.node)]);
    const app = buildApp(testConfig({ MAX_REPLICATION_LAG_MS: String(TARGET_MS), MAX_REPLICATION_LAG_HARD_MS: String(HARD_MS) }), { store: sa, transport: ta });
    const unguarded = buildApp(testConfig(), { store: sa, transport: ta });
    closers.push(async () => {
      await app.close();
      await unguarded.close();
    });
    await Promise.all([app.ready(), unguarded.ready()]);
    return { a: { store: sa, transport: ta, app, unguarded }, b: { store: sb, transport: tb, gate }, close };
  } catch (err) {
    await close();
    throw err;
  }
}

const post = (app: FastifyInstance, id: string) => app.inject({ method: 'POST', url: '/t', headers: { 'content-type': 'application/json' }, payload: { id } });
const flowOf = async (app: FastifyInstance) => (await app.inject({ method: 'GET', url: '/status' })).json().flowControl as FlowReport;
const metric = async (app: FastifyInstance, name: string) => {
  const f = families((await app.inject({ method: 'GET', url: '/metrics' })).body).get(name);
  return (f?.metrics ?? []).reduce((n, m) => n + Number((m as { count?: string; value?: string }).count ?? (m as { value?: string }).value ?? 0), 0);
};
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Polls `check` every 20 ms until it holds; fails after `timeoutMs` naming `what`. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await pause(20);
  }
}

describe.each(['plexus', 'nats per-write', 'nats batched'] as const)('flow control over %s', (kind) => {
  const dir = tempDir('replica-flow-');
  let pair: Pair;
  /** Ids n1 answered 2xx for: each must end up on both nodes. */
  const acknowledged: string[] = [];
  /** Ids refused with 503: on neither node. */
  const refused: string[] = [];
  let n = 0;

  /** Posts one new record; keeps its id in the list its answer puts it in. */
  const write = async (app: FastifyInstance): Promise<LightMyRequestResponse> => {
    const id = `w${n++}`;
    const r = await post(app, id);
    if (r.statusCode === 201) acknowledged.push(id);
    else if (r.statusCode === 503) refused.push(id);
    else throw new Error(`unexpected answer ${r.statusCode}: ${r.body}`);
    return r;
  };
  /** Writes until the answer has `status` (at most `timeoutMs`); returns that answer. */
  const writeUntil = async (app: FastifyInstance, status: number, timeoutMs: number): Promise<LightMyRequestResponse> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await write(app);
      if (r.statusCode === status) return r;
      if (Date.now() > deadline) throw new Error(`no ${status} within ${timeoutMs} ms; last ${r.statusCode}: ${r.body}`);
      if (r.statusCode === 503) await pause(20);
    }
  };
  const peerCounted = async () => (await flowOf(pair.a.app)).peers.some((p) => p.name === 'n2' && p.counted && p.lagMs === 0);

  beforeAll(async () => {
    pair = await startPair(kind, dir.path);
  });
  afterAll(async () => {
    await pair?.close();
    dir.remove();
  });

  it('makes writes wait while a connected peer stops confirming, refuses them with 503 and Retry-After past the hard limit, and loses nothing once the peer resumes', async () => {
    const { a, b } = pair;
    expect((await write(a.app)).statusCode).toBe(201);
    await until(peerCounted, 20_000, 'n2 counted by flow control, caught up');

    const release = b.gate.refuse();
    const r = await writeUntil(a.app, 503, 20_000);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.json()).toMatchObject({ statusCode: 503, code: 'REPLICA_ERR_REPLICATION_LAG', peer: 'n2', limitMs: expect.any(Number) });
    expect(r.json().lagMs).toBeGreaterThan(TARGET_MS);
    // Writes waited before any was refused: the lag passed the target before the hard limit.
    expect(await metric(a.app, 'replica_flow_control_wait_seconds')).toBeGreaterThanOrEqual(1);
    expect(await metric(a.app, 'replica_flow_control_refused_total')).toBeGreaterThanOrEqual(1);
    expect((await flowOf(a.app)).state).toBe('refusing');
    // Without MAX_REPLICATION_LAG_MS (the default) the same node takes the write.
    expect((await write(a.unguarded)).statusCode).toBe(201);
    expect(b.gate.refused).toBeGreaterThan(0);

    release();
    await writeUntil(a.app, 201, 20_000);
    await eventually(() => acknowledged.every((id) => b.store.get('t', id) !== undefined), 20_000, () => `n2 lacks ${acknowledged.filter((id) => b.store.get('t', id) === undefined).join(', ')}`);
    for (const s of [a.store, b.store]) {
      expect(s.tables()['t']?.count, s.name).toBe(acknowledged.length);
      for (const id of refused) expect(s.get('t', id), `refused ${id} on ${s.name}`).toBeUndefined();
    }
    await until(async () => (await flowOf(a.app)).state === 'open', 20_000, 'flow control open again');
  });

  it.skipIf(kind === 'nats batched')('does not wait for a peer that is down', async () => {
    const { a, b } = pair;
    await b.transport.stop();
    // plexus: at once (the connection closed); nats: once n2 has been silent for 6 s.
    await until(async () => !(await flowOf(a.app)).peers.some((p) => p.name === 'n2'), 15_000, 'n2 no longer a live peer');
    // Longer than the hard limit: had n2 counted, these writes would have waited and been refused.
    const end = Date.now() + HARD_MS + 200;
    while (Date.now() < end) expect((await write(a.app)).statusCode).toBe(201);
    expect((await flowOf(a.app)).state).toBe('open');
  });
});

import { accessSync, constants } from 'node:fs';
import { ConfigError, isNodeName, parseHostPort } from '@replica/transport-api';
import { DEFAULT_MIN_FREE, type Durability, type MinFree } from '@replica/storage';

export interface PeerAddress {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** Transport selection; each kind carries only the settings it uses. */
export type TransportConfig =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'plexus';
      /** Where this node accepts peer connections. */
      readonly listen: { readonly host: string; readonly port: number };
      /**
       * The seeds: nodes to reach at start (this node's own entry in PEERS is dropped).
       * The replicated member list adds the rest; a node listed here is reached at this
       * address even when its member record gives another.
       */
      readonly peers: readonly PeerAddress[];
      /** The address other members reach this node's replication at (`host:port`): what it records in the member list. */
      readonly advertise: string;
      /** Paths of the PEM files. */
      readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
      /** Path of the cluster CA's private key: when set, this node signs the certificate requests of joining nodes. */
      readonly caKey: string | undefined;
    }
  | {
      readonly kind: 'nats';
      readonly servers: readonly string[];
      readonly mode: 'per-write' | 'batched';
      readonly streamMaxAgeMs: number;
      /** -1: unlimited. */
      readonly streamMaxBytes: number;
      readonly streamReplicas: number;
      /** Place this node's stream on the server tagged `tag` in NATS cluster `cluster`. */
      readonly placement: { readonly cluster: string; readonly tag: string } | undefined;
      /**
       * Paths of the PEM files for TLS to NATS: the CA of the servers' certificates, and
       * this node's client certificate and key (both or neither). When set, the node
       * connects only with TLS.
       */
      readonly tls: { readonly ca?: string; readonly cert?: string; readonly key?: string } | undefined;
    };

export type TransportKind = TransportConfig['kind'];

/** The lag flow control keeps every live peer within, and the lag past which it refuses writes, in ms. */
export interface FlowControlSettings {
  readonly targetMs: number;
  readonly hardMs: number;
}

/** The hard limit, unless MAX_REPLICATION_LAG_HARD_MS says otherwise: this many times the target. */
export const DEFAULT_HARD_LAG_FACTOR = 4;
/** The smallest MAX_REPLICATION_LAG_MS: flow control measures the lag every target/20 ms, at least every 5 ms. */
export const MIN_REPLICATION_LAG_MS = 10;
/** The largest MAX_REPLICATION_LAG_MS, and MAX_REPLICATION_LAG_HARD_MS when set: one day. */
const MAX_LAG_SETTING_MS = 24 * 3600_000;

/** The node's whole configuration, validated and frozen. */
export interface Config {
  readonly nodeName: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly durability: Durability;
  /** The free-space floor of the data directory's filesystem: below it local writes are refused. */
  readonly minFree: MinFree;
  readonly retention: { readonly maxEntries: number; readonly maxAgeMs: number };
  /** How often log retention runs, in ms. */
  readonly pruneIntervalMs: number;
  /** Added to this node's wall clock (ms, may be negative): simulates clock skew in tests. */
  readonly clockOffsetMs: number;
  /** Largest accepted request body, in bytes. */
  readonly bodyLimit: number;
  /** When set, table routes need `Authorization: Bearer <token>`. */
  readonly apiToken: string | undefined;
  /** When set, the admin routes (`/cluster/…`) are on and need `Authorization: Bearer <token>`; when unset they are off. */
  readonly adminToken: string | undefined;
  /** How long a write with `X-Replicate-Confirm` waits for its peers, in ms. */
  readonly confirmTimeoutMs: number;
  /**
   * Flow control (`MAX_REPLICATION_LAG_MS`, `MAX_REPLICATION_LAG_HARD_MS`): new local writes
   * wait while a live peer has not confirmed this node's own writes of the last `targetMs`,
   * and are refused once that lag passes `hardMs`. Undefined: off.
   */
  readonly flowControl: FlowControlSettings | undefined;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly transport: TransportConfig;
}

const AVAILABLE = ['none', 'plexus', 'nats'] as const;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Turns environment variables into a {@link Config}. Every problem is collected and
 * reported at once in a {@link ConfigError}; nothing else in Replica reads the environment.
 */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const str = (name: string, fallback: string): string => {
    const v = env[name];
    return v === undefined || v === '' ? fallback : v;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return n;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const v = str(name, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      problems.push(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v as T;
  };

  const kind = str('REPLICATION_TRANSPORT', 'none');
  const nodeName = str('NODE_NAME', kind === 'none' ? 'standalone' : '');
  if (!isNodeName(nodeName)) {
    problems.push(
      nodeName === ''
        ? 'NODE_NAME is required when REPLICATION_TRANSPORT is not none'
        : `NODE_NAME must be a letter or digit followed by up to 63 letters, digits, _ or -, got ${JSON.stringify(nodeName)}`,
    );
  }
  const host = str('HOST', '127.0.0.1');
  const port = int('PORT', 8080, 0, 65535);
  const dataDir = str('DATA_DIR', `./data/${nodeName || 'node'}`);
  const durability = oneOf<Durability>('WRITE_DURABILITY', ['committed', 'flushed'], 'committed');
  const minFree = parseMinFree(str('MIN_FREE_BYTES', ''), problems);
  const maxEntries = int('LOG_RETENTION_ENTRIES', 1_000_000, 1, Number.MAX_SAFE_INTEGER);
  const maxAgeMs = int('LOG_RETENTION_MS', 7 * 24 * 3600_000, 1000, Number.MAX_SAFE_INTEGER);
  const pruneIntervalMs = int('LOG_PRUNE_INTERVAL_MS', 10_000, 100, 24 * 3600_000);
  const clockOffsetRaw = str('CLOCK_OFFSET_MS', '0');
  const clockOffsetMs = /^-?\d{1,12}$/.test(clockOffsetRaw) ? Number(clockOffsetRaw) : Number.NaN;
  if (!Number.isSafeInteger(clockOffsetMs) || Math.abs(clockOffsetMs) > 24 * 3600_000) {
    problems.push(`CLOCK_OFFSET_MS must be an integer from -86400000 to 86400000, got ${JSON.stringify(clockOffsetRaw)}`);
  }
  const bodyLimit = int('BODY_LIMIT', 1024 * 1024, 1024, 64 * 1024 * 1024);
  const apiToken = env['API_TOKEN'] === '' ? undefined : env['API_TOKEN'];
  if (apiToken !== undefined && apiToken.length < 16) problems.push('API_TOKEN must be at least 16 characters');
  const adminToken = env['ADMIN_TOKEN'] === '' ? undefined : env['ADMIN_TOKEN'];
  if (adminToken !== undefined && adminToken.length < 16) problems.push('ADMIN_TOKEN must be at least 16 characters');
  if (adminToken !== undefined && adminToken === apiToken) problems.push('ADMIN_TOKEN must differ from API_TOKEN: table access must not grant cluster administration');
  const confirmTimeoutMs = int('CONFIRM_TIMEOUT_MS', 5000, 1, 600_000);
  const logLevel = oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
  const flowControl = parseFlowControl(env, int, problems);

  /** A PEM file path from `name`, checked readable; undefined when unset, which is a problem when `requiredFor` says what needs it. */
  const pemFile = (name: string, requiredFor?: string): string | undefined => {
    const path = env[name];
    if (path === undefined || path === '') {
      if (requiredFor !== undefined) problems.push(`${name} is required for ${requiredFor} (a PEM file path)`);
      return undefined;
    }
    try {
      accessSync(path, constants.R_OK);
    } catch {
      problems.push(`${name}: cannot read ${path}`);
    }
    return path;
  };

  let transport: TransportConfig = { kind: 'none' };
  if (!(AVAILABLE as readonly string[]).includes(kind)) {
    problems.push(`REPLICATION_TRANSPORT must be one of ${AVAILABLE.join(', ')}, got ${JSON.stringify(kind)}`);
  } else if (kind === 'plexus') {
    const listen = { host: str('REPLICATION_HOST', '127.0.0.1'), port: int('REPLICATION_PORT', 9800, 0, 65535) };
    const peers = parsePeers(env['PEERS'], nodeName, problems);
    const file = (name: string) => pemFile(name, 'REPLICATION_TRANSPORT=plexus') ?? '';
    const advertise = str('REPLICATION_ADVERTISE', `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`);
    const advertised = parseHostPort(advertise);
    if (env['REPLICATION_ADVERTISE'] === undefined && listen.port === 0) {
      problems.push('REPLICATION_ADVERTISE is required when REPLICATION_PORT is 0: peers cannot reach a port chosen at start');
    } else if (!advertised) problems.push(`REPLICATION_ADVERTISE must be host:port, got ${JSON.stringify(advertise)}`);
    else if (advertised.host === '0.0.0.0' || advertised.host === '::') {
      problems.push(`REPLICATION_ADVERTISE is required when REPLICATION_HOST is ${listen.host}: the address other members reach this node at`);
    }
    transport = { kind: 'plexus', listen, peers, advertise, tls: { ca: file('TLS_CA'), cert: file('TLS_CERT'), key: file('TLS_KEY') }, caKey: pemFile('TLS_CA_KEY') };
  } else if (kind === 'nats') {
    const servers = (env['NATS_URL'] ?? '').split(',').map((u) => u.trim()).filter(Boolean);
    if (servers.length === 0) problems.push('NATS_URL is required for REPLICATION_TRANSPORT=nats (e.g. nats://127.0.0.1:4222)');
    for (const u of servers) if (!/^(nats|tls):\/\/[^\s]+$/.test(u)) problems.push(`NATS_URL: ${JSON.stringify(u)} is not a nats:// or tls:// URL`);
    const placementRaw = env['NATS_PLACEMENT'];
    let placement: { cluster: string; tag: string } | undefined;
    if (placementRaw) {
      const m = /^([^:\s]+):([^:\s]+)$/.exec(placementRaw);
      if (m) placement = { cluster: m[1] as string, tag: m[2] as string };
      else problems.push(`NATS_PLACEMENT must be cluster:tag, got ${JSON.stringify(placementRaw)}`);
    }
    const ca = pemFile('NATS_TLS_CA');
    const cert = pemFile('NATS_TLS_CERT');
    const key = pemFile('NATS_TLS_KEY');
    if ((cert === undefined) !== (key === undefined)) {
      problems.push(`NATS_TLS_CERT and NATS_TLS_KEY go together (the node's client certificate and its key), but only ${cert === undefined ? 'NATS_TLS_KEY' : 'NATS_TLS_CERT'} is set`);
    }
    const tls = ca === undefined && cert === undefined ? undefined : { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined && key !== undefined ? { cert, key } : {}) };
    transport = {
      kind: 'nats',
      servers,
      mode: oneOf('NATS_PUBLISH_MODE', ['per-write', 'batched'], 'per-write'),
      streamMaxAgeMs: int('NATS_STREAM_MAX_AGE_MS', 7 * 24 * 3600_000, 1000, Number.MAX_SAFE_INTEGER),
      streamMaxBytes: env['NATS_STREAM_MAX_BYTES'] ? int('NATS_STREAM_MAX_BYTES', -1, 1024 * 1024, Number.MAX_SAFE_INTEGER) : -1,
      streamReplicas: int('NATS_STREAM_REPLICAS', 1, 1, 5),
      placement,
      tls,
    };
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    nodeName,
    host,
    port,
    dataDir,
    durability,
    minFree,
    retention: { maxEntries, maxAgeMs },
    pruneIntervalMs,
    clockOffsetMs: Number.isSafeInteger(clockOffsetMs) ? clockOffsetMs : 0,
    bodyLimit,
    apiToken,
    adminToken,
    confirmTimeoutMs,
    flowControl,
    logLevel,
    transport,
  });
}

/**
 * MAX_REPLICATION_LAG_MS (unset or 0: off) and MAX_REPLICATION_LAG_HARD_MS (default
 * {@link DEFAULT_HARD_LAG_FACTOR} times the target; when set it must exceed the target).
 */
function parseFlowControl(env: Env, int: (name: string, fallback: number, min: number, max: number) => number, problems: string[]): FlowControlSettings | undefined {
  const target = int('MAX_REPLICATION_LAG_MS', 0, 0, MAX_LAG_SETTING_MS);
  const hardSet = env['MAX_REPLICATION_LAG_HARD_MS'] !== undefined && env['MAX_REPLICATION_LAG_HARD_MS'] !== '';
  const hard = int('MAX_REPLICATION_LAG_HARD_MS', 0, 1, MAX_LAG_SETTING_MS);
  if (target === 0) {
    if (hardSet) problems.push('MAX_REPLICATION_LAG_HARD_MS needs MAX_REPLICATION_LAG_MS: flow control is off without a target');
    return undefined;
  }
  if (target < MIN_REPLICATION_LAG_MS) {
    problems.push(`MAX_REPLICATION_LAG_MS must be 0 (off) or from ${MIN_REPLICATION_LAG_MS} to ${MAX_LAG_SETTING_MS}, got ${JSON.stringify(env['MAX_REPLICATION_LAG_MS'])}`);
    return undefined;
  }
  if (!hardSet) return { targetMs: target, hardMs: target * DEFAULT_HARD_LAG_FACTOR };
  if (hard !== 0 && hard <= target) {
    problems.push(`MAX_REPLICATION_LAG_HARD_MS must be greater than MAX_REPLICATION_LAG_MS (${target}): writes wait between the two and are refused past the hard limit, got ${JSON.stringify(env['MAX_REPLICATION_LAG_HARD_MS'])}`);
  }
  return { targetMs: target, hardMs: hard };
}

/**
 * MIN_FREE_BYTES: a number of bytes (0: no floor) or a percentage of the filesystem's
 * size up to 50 % (`5%`, `2.5%`); unset: 5 %, at most 1 GiB.
 */
function parseMinFree(raw: string, problems: string[]): MinFree {
  if (raw === '') return DEFAULT_MIN_FREE;
  const pct = /^(\d{1,2}(?:\.\d{1,2})?)%$/.exec(raw);
  if (pct) {
    const p = Number(pct[1]);
    if (p > 0 && p <= 50) return { share: p / 100 };
  } else if (/^\d{1,16}$/.test(raw) && Number.isSafeInteger(Number(raw))) {
    return { bytes: Number(raw) };
  }
  problems.push(`MIN_FREE_BYTES must be a number of bytes (0 for no floor) or a percentage of the filesystem from 0.01% to 50% (e.g. 5%), got ${JSON.stringify(raw)}`);
  return DEFAULT_MIN_FREE;
}

/** PEERS: `name@host:port`, comma-separated; this node's own entry may be listed and is dropped. */
function parsePeers(raw: string | undefined, self: string, problems: string[]): PeerAddress[] {
  if (raw === undefined || raw.trim() === '') {
    problems.push('PEERS is required for REPLICATION_TRANSPORT=plexus: name@host:port, comma-separated');
    return [];
  }
  const peers: PeerAddress[] = [];
  const seen = new Set<string>();
  for (const item of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = item.indexOf('@');
    const name = item.slice(0, at);
    const address = parseHostPort(item.slice(at + 1));
    if (at < 0 || !isNodeName(name) || !address) {
      problems.push(`PEERS: ${JSON.stringify(item)} is not name@host:port`);
      continue;
    }
    if (seen.has(name)) problems.push(`PEERS: ${name} is listed twice`);
    seen.add(name);
    if (name !== self) peers.push({ name, ...address });
  }
  if (peers.length === 0 && problems.length === 0) problems.push('PEERS lists no node other than this one');
  return peers;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

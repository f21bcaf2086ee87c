import { ConfigError, isNodeName } from '@replica/transport-api';
import type { Durability } from '@replica/storage';

/** Transport selection; each kind carries only the settings it uses. */
export type TransportConfig = { readonly kind: 'none' };

export type TransportKind = TransportConfig['kind'];

/** The node's whole configuration, validated and frozen. */
export interface Config {
  readonly nodeName: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly durability: Durability;
  readonly retention: { readonly maxEntries: number; readonly maxAgeMs: number };
  /** Largest accepted request body, in bytes. */
  readonly bodyLimit: number;
  /** When set, table routes need `Authorization: Bearer <token>`. */
  readonly apiToken: string | undefined;
  /** How long a write with `X-Replicate-Confirm` waits for its peers, in ms. */
  readonly confirmTimeoutMs: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly transport: TransportConfig;
}

/** Kinds this build can run; the others are named so the error can say what is coming. */
const AVAILABLE = ['none'] as const;
const PLANNED = ['plexus', 'nats'] as const;
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
  const maxEntries = int('LOG_RETENTION_ENTRIES', 1_000_000, 1, Number.MAX_SAFE_INTEGER);
  const maxAgeMs = int('LOG_RETENTION_MS', 7 * 24 * 3600_000, 1000, Number.MAX_SAFE_INTEGER);
  const bodyLimit = int('BODY_LIMIT', 1024 * 1024, 1024, 64 * 1024 * 1024);
  const apiToken = env['API_TOKEN'] === '' ? undefined : env['API_TOKEN'];
  if (apiToken !== undefined && apiToken.length < 16) problems.push('API_TOKEN must be at least 16 characters');
  const confirmTimeoutMs = int('CONFIRM_TIMEOUT_MS', 5000, 1, 600_000);
  const logLevel = oneOf('LOG_LEVEL', LOG_LEVELS, 'info');

  let transport: TransportConfig = { kind: 'none' };
  if ((PLANNED as readonly string[]).includes(kind)) {
    problems.push(`REPLICATION_TRANSPORT=${kind} is not available in this build yet; available: ${AVAILABLE.join(', ')}`);
  } else if (!(AVAILABLE as readonly string[]).includes(kind)) {
    problems.push(`REPLICATION_TRANSPORT must be one of ${[...AVAILABLE, ...PLANNED].join(', ')}, got ${JSON.stringify(kind)}`);
  } else {
    transport = { kind: 'none' };
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    nodeName,
    host,
    port,
    dataDir,
    durability,
    retention: { maxEntries, maxAgeMs },
    bodyLimit,
    apiToken,
    confirmTimeoutMs,
    logLevel,
    transport,
  });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

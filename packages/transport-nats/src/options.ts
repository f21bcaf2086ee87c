import { withDefaults } from '@replica/transport-api';
import type { NatsTlsFiles } from './tls.js';

/**
 * How committed writes go to the broker:
 * - `per-write`: one message per write; the write's HTTP answer waits for the broker's
 *   acknowledgement (PubAck), as Harper 4.3 did.
 * - `batched`: many entries per message, published asynchronously with a bounded
 *   number in flight; the HTTP answer does not wait for the broker.
 */
export const PublishMode = { perWrite: 'per-write', batched: 'batched' } as const;
export type PublishMode = (typeof PublishMode)[keyof typeof PublishMode];

export interface NatsInit {
  /** NATS server URL(s), e.g. nats://user:pass@127.0.0.1:4222. */
  readonly servers: string | readonly string[];
  readonly mode: PublishMode;
  /** Stream name prefix; each origin owns `<prefix>_<node>`. Default REPLICA. */
  readonly streamPrefix?: string;
  /** Subject prefix; an origin publishes on `<prefix>.<node>.<table>`. Default replica. */
  readonly subjectPrefix?: string;
  /** Place this node's stream on the server with this tag (the node's own server), in this NATS cluster. */
  readonly placement?: { readonly cluster: string; readonly tag: string };
  /** Stream limits: oldest messages are discarded past them. Defaults 7 days, unlimited bytes. */
  readonly streamMaxAgeMs?: number;
  readonly streamMaxBytes?: number;
  /** Stream replicas in the NATS cluster. Default 1 (stored on its own server). */
  readonly streamReplicas?: number;
  /** batched mode: entries and bytes per message. Defaults 500 and 1 MiB. */
  readonly batchMaxEntries?: number;
  readonly batchMaxBytes?: number;
  /** Publishes awaiting their PubAck at once. Default 256. */
  readonly maxInFlight?: number;
  /** Messages a consumer keeps requested, and the longest a pull request waits. Defaults 256 and 1000 ms. */
  readonly fetchBatch?: number;
  readonly fetchExpiresMs?: number;
  /** How long a delivered message may stay unacknowledged before the broker redelivers it (e.g. after a crash). Default 5000 ms. */
  readonly ackWaitMs?: number;
  /** per-write: how long a write waits for its PubAck. Default 5000 ms. */
  readonly publishTimeoutMs?: number;
  /** How long start() keeps retrying JetStream calls (a forming cluster has no meta leader yet). Default 30 s. */
  readonly startTimeoutMs?: number;
  /** How often other nodes' streams are looked for, and consumer state refreshed. Default 1000 ms. */
  readonly discoverIntervalMs?: number;
  /**
   * After this node learned that a member was removed, how long it waits at most for the
   * removed node to finish shipping writes it committed but its stream does not hold yet
   * (what the stream holds is always applied first, however long that takes). Default 5000 ms.
   */
  readonly removalDrainMs?: number;
  /**
   * TLS for the connection to NATS (PEM file paths). When set, the node connects only
   * with TLS: `ca` is the CA that signed the servers' certificates (default: Node's trust
   * store); `cert` and `key`, both or neither, are its client certificate for servers
   * that verify clients. The files are read at every (re)connect.
   */
  readonly tls?: NatsTlsFiles;
}

// ------------------------------------------------------------ defaults of NatsInit

/** The defaults of {@link NatsInit}: one named value per setting. */
export const NATS_DEFAULTS = Object.freeze({
  streamPrefix: 'REPLICA',
  subjectPrefix: 'replica',
  streamMaxAgeMs: 7 * 24 * 3600_000,
  /** -1: no byte limit. */
  streamMaxBytes: -1,
  streamReplicas: 1,
  batchMaxEntries: 500,
  batchMaxBytes: 1024 * 1024,
  maxInFlight: 256,
  fetchBatch: 256,
  fetchExpiresMs: 1000,
  ackWaitMs: 5000,
  publishTimeoutMs: 5000,
  startTimeoutMs: 30_000,
  discoverIntervalMs: 1000,
  removalDrainMs: 5000,
});
/** The nats client refuses pull requests that expire sooner. */
export const MIN_FETCH_EXPIRES_MS = 1000;

// ------------------------------------------------------------ fixed tunables

/** The stream drops a message whose id it stored this recently (capped by the stream's max age). */
export const DUPLICATE_WINDOW_MS = 120_000;
/** Messages a peer's durable consumer may hold delivered but unacknowledged. */
export const MAX_ACK_PENDING = 20_000;
/** per-write: log entries the outbox reads at a time (batched reads `batchMaxEntries`). */
export const READ_BATCH = 256;
/** The outbox looks at the log this often when no commit woke it. */
export const OUTBOX_IDLE_MS = 1000;
/** Pause after a failed publish before the outbox rereads the stream and ships again. */
export const OUTBOX_RETRY_MS = 250;
/** How often the outbox tries again while the broker refuses its messages for lack of storage. */
export const BROKER_FULL_RETRY_MS = 1000;
/** Records per message of a merge-resync snapshot. */
export const SNAPSHOT_BATCH = 500;
/** A merge resync gives up on a snapshot source that sent nothing for this long. */
export const SNAPSHOT_IDLE_MS = 10_000;
/** How long a snapshot source waits for the receiver to merge one message. */
export const SNAPSHOT_SEND_TIMEOUT_MS = 30_000;
/** How often this node's applied cursors are announced after it applied something. */
export const ANNOUNCE_INTERVAL_MS = 100;
/** Cursors are announced at least this often, applied or not: a restarted peer learns them. */
export const ANNOUNCE_REFRESH_MS = 2000;
/** How often publishes still waiting for their PubAck are checked for the publish timeout (at most). */
export const PUBACK_SWEEP_MS = 250;
/** How long the TLS check of one server may take before it counts as not answering. */
export const TLS_CHECK_TIMEOUT_MS = 3000;
/** How long the client may fail to reconnect before the servers are probed for the reason. */
export const RECONNECT_CHECK_MS = 5000;
/** While the outage lasts, the servers are probed again this often. */
export const RECONNECT_RECHECK_MS = 60_000;
/** The nats client's pause between reconnect attempts. */
export const RECONNECT_WAIT_MS = 250;
/** The nats client's ping interval, and its connect timeout. */
export const PING_INTERVAL_MS = 5000;
export const CONNECT_TIMEOUT_MS = 5000;
/** Retry delays of start-up steps while JetStream is not available yet (backoff with jitter). */
export const START_RETRY_MIN_MS = 250;
export const START_RETRY_MAX_MS = 2000;
/** A wiped node asks its peers for its writes again this often while none could send them. */
export const RESTORE_RETRY_MS = 1000;
/** A consumer re-positioned sooner than this after the last time pauses first (a gap that repositioning cannot close). */
export const REPOSITION_MIN_INTERVAL_MS = 1000;
/** That pause, and the pause before a failed consumer is set up again. */
export const CONSUMER_RETRY_MS = 500;
/** How often a member removal is acted on (drain, consumer and stream deletion) while one is pending. */
export const REMOVAL_CHECK_MS = 500;
/** A removed member's stream that is gone is looked for again this often (a restarted removed node creates it again). */
export const GONE_RECHECK_MS = 10_000;
/** A peer not heard announcing for this long is taken to be down: flow control no longer waits for it. */
export const PEER_SILENT_MS = 3 * ANNOUNCE_REFRESH_MS;
/** A removed member not heard announcing for this long is taken to be down: it ships nothing more. */
export const REMOVED_SILENT_MS = 3 * ANNOUNCE_REFRESH_MS;
/** How long a consumer that is retired may take to stop before its deletion is left to the next try. */
export const CONSUMER_RETIRE_TIMEOUT_MS = 5000;
/** Searches for a stream message that the stream's limits may discard meanwhile. */
export const STREAM_SEARCH_ATTEMPTS = 3;

/** {@link NatsInit} with every default applied; frozen. */
export interface NatsConfig {
  readonly servers: readonly string[];
  readonly mode: PublishMode;
  readonly streamPrefix: string;
  readonly subjectPrefix: string;
  readonly placement: NatsInit['placement'];
  readonly streamMaxAgeMs: number;
  readonly streamMaxBytes: number;
  readonly streamReplicas: number;
  readonly batchMaxEntries: number;
  readonly batchMaxBytes: number;
  readonly maxInFlight: number;
  readonly fetchBatch: number;
  readonly fetchExpiresMs: number;
  readonly ackWaitMs: number;
  readonly publishTimeoutMs: number;
  readonly startTimeoutMs: number;
  readonly discoverIntervalMs: number;
  readonly removalDrainMs: number;
  readonly tls: NatsTlsFiles | undefined;
}

export function resolveOptions(init: NatsInit): NatsConfig {
  const o = withDefaults(init, NATS_DEFAULTS);
  return Object.freeze({
    ...o,
    servers: typeof init.servers === 'string' ? [init.servers] : [...init.servers],
    placement: init.placement,
    fetchExpiresMs: Math.max(MIN_FETCH_EXPIRES_MS, o.fetchExpiresMs),
    tls: init.tls,
  });
}

/**
 * A hybrid-logical-clock version: wall-clock milliseconds, a logical counter that
 * orders events within one millisecond (and absorbs clock skew), and the node that
 * made the change. Versions are totally ordered by {@link compareVersions}.
 */
export type Version = readonly [wallMs: number, counter: number, node: string];

/** What a log entry does to its record. */
export const Op = { put: 'put', delete: 'delete' } as const;
export type Op = (typeof Op)[keyof typeof Op];

/** A stored document: a JSON object whose `id` is a string. */
export type RecordValue = { readonly id: string; readonly [field: string]: unknown };

/**
 * One change in a node's replication log.
 *
 * `seq` is the entry's position in the log of the node that holds it (gap-free,
 * local to that node). `originSeq` is the entry's position among the writes of
 * `origin`, the node that accepted the write: gap-free per origin, and identical on
 * every node that holds the entry. Entries of one origin appear in every log in
 * `originSeq` order.
 */
export interface LogEntry {
  readonly seq: number;
  readonly origin: string;
  readonly originSeq: number;
  readonly table: string;
  readonly id: string;
  readonly version: Version;
  readonly op: Op;
  /** The record for `put`; absent for `delete`. */
  readonly value?: RecordValue;
}

/** For each origin node, the highest `originSeq` applied here (a contiguous prefix). */
export type Cursors = Readonly<Record<string, number>>;

/** Outcome of {@link LocalNode.applyRemote}. */
export interface ApplyResult {
  /** Entries written (record changed or not: each becomes a log entry here). */
  readonly applied: number;
  /** Entries at or below this node's cursor for their origin: already applied. */
  readonly skipped: number;
  /**
   * Entries that came after a gap in their origin's sequence and were NOT applied.
   * The transport must deliver them again after the missing entries.
   */
  readonly deferred: number;
  /** This node's cursors after the apply. */
  readonly cursors: Cursors;
}

/** One record as it is in a store, tombstones included, for a merge resync. */
export interface SnapshotRecord {
  readonly table: string;
  readonly id: string;
  readonly version: Version;
  /** Absent for a tombstone. */
  readonly value?: RecordValue;
}

/** A consistent snapshot of a store: every entry at or below `cursors` is in `records`. */
export interface Snapshot {
  readonly cursors: Cursors;
  /** Records in batches; iterating reads a consistent LMDB snapshot. */
  readonly batches: Iterable<readonly SnapshotRecord[]>;
}

/** Where a sender must start streaming its log for a receiver with given cursors. */
export type LogStart =
  | { readonly kind: 'stream'; readonly fromSeq: number }
  /** The entries the receiver needs were pruned: it must be resynced by a merge. */
  | { readonly kind: 'resync'; readonly origin: string; readonly needed: number; readonly oldest: number };

/**
 * What a store offers a replication transport. Transports never touch LMDB directly.
 */
export interface LocalNode {
  /** This node's name, unique in the cluster. */
  readonly name: string;
  /** The newest local log sequence (0 when the log is empty). */
  lastSeq(): number;
  /** Up to `limit` log entries with `seq >= fromSeq`, in log order. */
  readLog(fromSeq: number, limit: number): LogEntry[];
  /** The position to stream from so that a receiver with `cursors` misses nothing. */
  logStart(cursors: Cursors): LogStart;
  /** This node's per-origin cursors (its own name maps to its own write count). */
  cursors(): Cursors;
  /**
   * Applies remote entries in ONE transaction: records (last-write-wins), log entries
   * and cursors commit together. Entries at or below the cursor are skipped, so
   * redelivery is harmless; entries after a gap are deferred, never applied out of order.
   * Resolves after the commit (with the node's configured durability).
   */
  applyRemote(entries: readonly LogEntry[]): Promise<ApplyResult>;
  /** Calls `listener` with the newest `seq` after each commit. Returns an unsubscribe. */
  onCommit(listener: (lastSeq: number) => void): () => void;
  /** A consistent snapshot for a merge resync of a peer. */
  snapshot(batchSize: number): Snapshot;
  /**
   * Merges records from a peer's snapshot (last-write-wins, never replacing newer data,
   * tombstones included). Returns how many records changed here.
   */
  mergeSnapshot(records: readonly SnapshotRecord[]): Promise<number>;
  /** After a complete merge: raises each cursor to at least the snapshot's. */
  adoptCursors(cursors: Cursors): Promise<void>;
  /**
   * Keeps log entries with `seq >= fromSeq` out of retention's reach for `holder` (an
   * outbox that has not shipped them yet); `undefined` releases the hold. Optional.
   */
  retainLog?(holder: string, fromSeq: number | undefined): void;
}

/** Replication state of one peer as seen from this node. */
export interface PeerStatus {
  readonly name: string;
  readonly connected: boolean;
  /** Highest local log seq this peer confirmed as applied. */
  readonly ackedSeq: number;
  /** Local log entries not yet confirmed by this peer. */
  readonly lagEntries: number;
  /** Age of the oldest unconfirmed entry, or 0 when the peer is caught up. */
  readonly lagMs: number;
  /** Transport-specific counters (bytes, frames, reconnects, redeliveries, …). */
  readonly counters: Readonly<Record<string, number>>;
  /** Transport-specific descriptive fields (certificate name, consumer name, …). */
  readonly info?: Readonly<Record<string, string>>;
  /** Per origin, the highest originSeq this peer confirmed as applied, where the transport knows it. */
  readonly appliedThrough?: Readonly<Record<string, number>>;
}

export interface TransportStatus {
  readonly kind: string;
  readonly started: boolean;
  readonly peers: readonly PeerStatus[];
  /** Transport-wide counters (refused connections by reason, …). */
  readonly counters?: Readonly<Record<string, number>>;
}

/** The logging a transport needs; pino and fastify's logger fit it. */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface StartOptions {
  /** Aborting it stops the transport. */
  readonly signal?: AbortSignal;
}

/**
 * A way to replicate every committed write of one node to every other node.
 *
 * Guarantees every transport gives: entries of one origin are applied on every node
 * in origin order, each at most once (the store's cursors make redelivery harmless);
 * every committed entry reaches every peer that stays up long enough, also across
 * restarts of either side; `stop()` releases every socket and timer.
 */
export interface ReplicationTransport {
  /** 'memory' | 'nats' | 'plexus' */
  readonly kind: string;
  /** Starts replicating `node`. Rejects with a {@link ReplicaError} if it cannot. */
  start(node: LocalNode, opts?: StartOptions): Promise<void>;
  /** Stops replicating and releases every resource. Idempotent. */
  stop(): Promise<void>;
  status(): TransportStatus;
  /**
   * Resolves once the transport has taken over local entry `seq` (a broker's
   * acknowledgement). Transports that define it make a write's answer wait for it;
   * the nats transport in `per-write` mode does, as Harper 4.3 did.
   */
  shipped?(seq: number): Promise<void>;
  /**
   * Waits until `count` peers applied the local entry `seq`, or `timeoutMs` passed.
   * Resolves with how many peers confirmed (less than `count` on timeout).
   */
  waitForReplicas?(seq: number, count: number, timeoutMs: number): Promise<number>;
}

/** Total order of versions: wall time, then counter, then node name. */
export function compareVersions(a: Version, b: Version): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  if (a[2] === b[2]) return 0;
  return a[2] < b[2] ? -1 : 1;
}

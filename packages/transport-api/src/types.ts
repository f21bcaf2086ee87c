import type { TransportState } from './lifecycle.js';

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
  /**
   * The seq of the entry of `origin` numbered `originSeq` in this node's log, or
   * undefined when the log does not hold it (never had it, or retention pruned it).
   */
  seqOf(origin: string, originSeq: number): number | undefined;
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
  /**
   * Resolves once the store takes replicated writes again, after `applyRemote`,
   * `mergeSnapshot` or `adoptCursors` refused them (`StorageFullError`,
   * `StorageFailedError`); at once while it takes them. A transport that was refused
   * waits here, acknowledging nothing it did not apply, then resumes from the cursors.
   * Rejects with the signal's reason when `signal` aborts, and with `StoreClosedError`
   * when the store closes. Optional: without it, {@link untilWritable} waits a fixed delay.
   */
  whenWritable?(signal?: AbortSignal): Promise<void>;
}

/**
 * Replication state of one peer, always seen from THIS node's side: how much of what
 * this node holds the peer has confirmed applying. Every field means the same on every
 * transport (the compliance suite checks it), so a dashboard reads one node's status
 * and knows how far behind each peer is.
 */
export interface PeerStatus {
  readonly name: string;
  /** This node can exchange entries with the peer now: a live connection to it, or a broker connection and a running consumer of its entries. */
  readonly connected: boolean;
  /**
   * The highest seq of THIS node's log through which the peer confirmed applying every
   * entry it takes from this node. Entries it takes elsewhere (another origin's stream,
   * another relay) count as confirmed once every entry before them is. 0 before any
   * confirmation; never above {@link LocalNode.lastSeq}.
   */
  readonly ackedSeq: number;
  /** Entries of this node's log after `ackedSeq`: `lastSeq() - ackedSeq`, 0 when caught up. */
  readonly lagEntries: number;
  /** Age in ms of the oldest entry of this node's log after `ackedSeq` (by its version's wall time); 0 when `lagEntries` is 0. */
  readonly lagMs: number;
  /**
   * Per origin, the highest originSeq the peer confirmed applying, as this node learned
   * it (the peer's acknowledgements or announcements). An origin the peer never
   * confirmed to this node is absent; this node's own name is always present once the
   * peer confirmed any of its writes.
   */
  readonly appliedThrough: Readonly<Record<string, number>>;
  /**
   * What the peer held, per origin, when this node last (re)connected to it (plexus: the
   * cursors of its hello; nats: the last originSeq in the peer's stream when this node's
   * consumer on it started, and what the peer announced applying of removed members). A node that
   * applied this much of every origin caught up with the peer: the node's readiness
   * compares against it. Absent before the first connection.
   */
  readonly holds?: Readonly<Record<string, number>>;
  /** Totals that only grow while the transport runs (bytes, frames, reconnects, …): Prometheus counters. */
  readonly counters: Readonly<Record<string, number>>;
  /** Current values that go up and down (bytes in flight, queued messages, …): Prometheus gauges. */
  readonly gauges: Readonly<Record<string, number>>;
  /** Descriptive fields (certificate name, stream, consumer, address, …). */
  readonly info?: Readonly<Record<string, string>>;
}

/**
 * One peer as flow control sees it ({@link ReplicationTransport.liveConfirmations}): a peer
 * that is up, and how many of THIS node's own writes it confirmed applying.
 */
export interface LiveConfirmation {
  readonly name: string;
  /**
   * The highest originSeq of this node's own writes the peer confirmed applying, as this
   * node learned it (its {@link PeerStatus.appliedThrough} for this node's name; 0 before
   * any confirmation). Its oldest unconfirmed own write is the next one (see `ownWriteAge`).
   */
  readonly ownApplied: number;
}

/** Whether a node is one of the cluster's members or was removed from it. */
export type MemberState = 'active' | 'removed';

/** One node of the cluster as the replicated member list describes it. */
export interface Member {
  readonly name: string;
  /** Where its replication transport is reached (`host:port`); '' for a transport that needs no address (nats). */
  readonly address: string;
  readonly state: MemberState;
  /**
   * SHA-256 fingerprints (upper-case hex, colon-separated, as Node prints them) of this
   * node's certificates that are refused whatever its state: those it presented before
   * it was removed.
   */
  readonly revoked: readonly string[];
}

export interface TransportStatus {
  readonly kind: string;
  readonly started: boolean;
  readonly peers: readonly PeerStatus[];
  /** Transport-wide totals that only grow (publish errors, broker reconnects, …). */
  readonly counters: Readonly<Record<string, number>>;
  /** Transport-wide current values. */
  readonly gauges: Readonly<Record<string, number>>;
  /**
   * Peer connections refused, by reason — a {@link TlsFailure} or a transport's own reason
   * (an unknown node name, the wrong direction): incoming ones this node turned away, and
   * dialled ones whose certificate failed this node's checks or that the peer refused with
   * a TLS alert. Totals that only grow.
   */
  readonly refused: Readonly<Record<string, number>>;
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
  /** new, started or stopped; cheap to read (for health checks). */
  readonly state: TransportState;
  /** The peers this node replicates with (configured or discovered); cheap to read. */
  peerNames(): readonly string[];
  /** The full replication state; reads the store, so not for every request. */
  status(): TransportStatus;
  /**
   * The peers flow control waits for (`MAX_REPLICATION_LAG_MS`), with how many of this
   * node's own writes each confirmed applying: every peer this node exchanges entries with
   * now and has heard from recently enough to count as up. Plexus: the connected peers (a
   * peer silent for `deadAfterMs` is disconnected); nats: the peers whose stream this node
   * consumes over a live broker connection and that announced their cursors within the
   * last 6 s; memory: the linked peers. A peer that is not listed (down, disconnected,
   * removed) holds no write back. Empty while the transport is not started. Cheap: reads
   * no store, so it can be called every few milliseconds.
   */
  liveConfirmations(): readonly LiveConfirmation[];
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
  /**
   * The cluster's members changed (or are told for the first time, right after start):
   * connect to members this node does not replicate with yet, stop replicating with
   * removed ones and refuse them from now on. `members` is the whole list, this node
   * included, removed members too (their revoked certificates stay refused). Callable
   * before start; a transport applies the latest list when it starts.
   */
  setMembers?(members: readonly Member[]): void;
}

/** Total order of versions: wall time, then counter, then node name. */
export function compareVersions(a: Version, b: Version): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  if (a[2] === b[2]) return 0;
  return a[2] < b[2] ? -1 : 1;
}

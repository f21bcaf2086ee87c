import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { open, type Database, type Key, type RootDatabase } from 'lmdb';
import {
  InvalidTableError,
  RecordExistsError,
  StorageFullError,
  isStoredTableName,
  StoreClosedError,
  compareVersions,
  silentLogger,
  type ApplyResult,
  type Cursors,
  type LocalNode,
  type LogEntry,
  type LogStart,
  type Logger,
  type Op,
  type RecordValue,
  type Snapshot,
  type SnapshotRecord,
  type Version,
} from '@replica/transport-api';
import { HybridClock } from './clock.js';
import { DIGEST_BYTES, recordHash, xorInto } from './digest.js';
import { Histogram, LAG_BUCKETS_MS, type LagHistogram } from './histogram.js';
import { LogTail } from './log-tail.js';
import { PRUNE_CHUNK, Retention } from './retention.js';
import { DEFAULT_MIN_FREE, statFs, type MinFree, type StatFs } from './space.js';
import { StorageGate, type StorageStatus, type WriteKind } from './storage-gate.js';
import {
  CURSOR_PREFIX,
  GUARD_KEY,
  HEAD_KEY,
  TABLE_PREFIX,
  adoptedKey,
  cursorKey,
  metaName,
  metaRange,
  openDbs,
  pendingKey,
  recordKey,
  tableKey,
  toEntry,
  type Head,
  type IndexKey,
  type MetaKey,
  type RecordKey,
  type StoredEntry,
  type StoredRecord,
  type StoredTableStats,
} from './schema.js';
import { validate, validateKey } from './validate.js';
import { verifyStore } from './verify.js';

/**
 * When a write's promise resolves:
 * - `committed`: the LMDB transaction committed; the write survives a crash of the
 *   process (the OS holds it), not necessarily a power loss. The default.
 * - `flushed`: the commit was also synced to disk; it survives a power loss.
 */
export type Durability = 'committed' | 'flushed';

/** A staged write: database, key, and the value or {@link REMOVE}. */
type StagedWrite = [db: Database<unknown, Key>, key: Key, value: unknown];
/** The value of a staged removal. */
const REMOVE = Symbol('remove');
/** Free space a new store needs (its lock file, meta pages and first commits). */
export const NEW_STORE_MIN_FREE_BYTES = 256 * 1024;
const noop = () => {};

export interface StoreOptions {
  /** Directory of the LMDB environment (created if missing). */
  readonly path: string;
  /** This node's name, unique in the cluster. */
  readonly nodeName: string;
  readonly durability?: Durability;
  /** Log retention: entries beyond either bound are pruned (at least the newest entry stays). */
  readonly retention?: { readonly maxEntries?: number; readonly maxAgeMs?: number };
  /** How often retention runs; 0 disables the timer (call prune() yourself). Default 10 s. */
  readonly pruneIntervalMs?: number;
  /** Newest log entries kept in memory for readLog (the replication hot path). Default 16384. */
  readonly logCacheEntries?: number;
  /** Deepest nesting a record may have. Default 32. */
  readonly maxDepth?: number;
  /** Wall clock in ms, for tests of clock skew. Default Date.now. */
  readonly wallClock?: () => number;
  /** Where the store reports changes of its storage state and failures of its background work. Default: silent. */
  readonly logger?: Logger;
  /** Free space the data directory's filesystem keeps: below it local writes are refused. Default 5 % of it, at most 1 GiB. */
  readonly minFree?: MinFree;
  /** How often free space is measured, and a full store tries a commit again; 0 disables the timer. Default 1 s. */
  readonly spaceCheckIntervalMs?: number;
  /** Measures the filesystem (tests). Default: statfs(2). */
  readonly statFs?: StatFs;
}

export interface WriteResult {
  /** Position of the write in this node's log. */
  readonly seq: number;
  readonly version: Version;
  /** true when no live record had this id before. */
  readonly created: boolean;
}

export interface TableStats {
  /** Live records (tombstones not counted). */
  readonly count: number;
  /** Hex digest over (id, version) of every record, tombstones included. */
  readonly digest: string;
}

interface MutableTableStats {
  count: number;
  digest: Buffer;
}

/**
 * The node's store: tables of versioned records, the replication log and the
 * per-origin cursors, in one LMDB environment. Every write, local or replicated,
 * commits its record, its log entry and the cursor in ONE transaction; concurrent
 * writes are grouped into one LMDB commit per event-loop turn.
 */
export class Store implements LocalNode {
  readonly name: string;
  readonly durability: Durability;

  readonly #env: RootDatabase;
  /** Keyed by `[table, id]` (see {@link recordKey}). */
  readonly #records: Database<StoredRecord, RecordKey>;
  readonly #log: Database<StoredEntry, number>;
  readonly #index: Database<number, IndexKey>;
  readonly #meta: Database<unknown, MetaKey>;
  readonly #guard: Database<number, string>;
  readonly #clock: HybridClock;
  readonly #maxDepth: number;
  readonly #retention: Retention;
  readonly #wallClock: () => number;
  readonly #logger: Logger;
  readonly #listeners = new Set<(seq: number) => void>();
  readonly #tables = new Map<string, MutableTableStats>();
  /** Cursors as the write transaction sees them (may run ahead of the last commit). */
  readonly #cursors = new Map<string, number>();
  #seq = 0;
  #committedSeq = 0;
  #notifyQueued = false;
  #pruneTimer: NodeJS.Timeout | undefined;
  #pruning: Promise<number> | undefined;
  #closed = false;
  /** What the store admits now (full disk, failed commits) and who waits for it. */
  readonly #gate: StorageGate;
  #spaceTimer: NodeJS.Timeout | undefined;
  /** Commits awaiting LMDB. */
  #inflight = 0;
  /** false from a failed commit until the in-memory state was reloaded from what LMDB committed. */
  #settled = true;
  #probing = false;
  /** The newest batch this store saw end failed. */
  #lastCommitFailed = false;
  /** A commit was staged in the batch now open: its end advances the guard. */
  #batchHasCommits = false;
  /**
   * The number of the next commit (batch) as the guard counts them: every write is staged
   * conditional on the guard holding the number of the batch before it, and each batch
   * advances it. A batch staged behind one that failed thus writes nothing.
   */
  #chain = 0;
  /** Recent log entries: senders read the log tail without LMDB decoding. */
  readonly #tail: LogTail;
  /** Replication lag (ms) of the remote entries applied since the store opened. */
  readonly #lag = new Histogram(LAG_BUCKETS_MS);
  /** Records written by commits still in flight, by {@link pendingKey}, with how many writes hold them. */
  readonly #pending = new Map<string, { record: StoredRecord; writers: number }>();
  #staged: string[] = [];
  /** Cursors, tables and head changed since the last commit: written once per commit. */
  readonly #dirtyCursors = new Set<string>();
  readonly #dirtyTables = new Set<string>();
  #dirtyHead = false;
  /** The writes of the commit being staged: issued together, inside its guard condition. */
  #ops: StagedWrite[] | undefined;

  private constructor(env: RootDatabase, options: StoreOptions) {
    this.name = options.nodeName;
    this.durability = options.durability ?? 'committed';
    this.#env = env;
    const dbs = openDbs(env);
    this.#records = dbs.records;
    this.#log = dbs.log;
    this.#index = dbs.index;
    this.#meta = dbs.meta;
    this.#guard = dbs.guard;
    this.#maxDepth = options.maxDepth ?? 32;
    this.#tail = new LogTail(options.logCacheEntries ?? 16_384);
    this.#retention = new Retention(options.retention);
    this.#wallClock = options.wallClock ?? Date.now;
    this.#logger = options.logger ?? silentLogger;
    const checkIntervalMs = options.spaceCheckIntervalMs ?? 1000;
    this.#gate = new StorageGate({ path: options.path, minFree: options.minFree ?? DEFAULT_MIN_FREE, statFs: options.statFs ?? statFs, logger: this.#logger, checkIntervalMs });

    const head = this.#meta.get(HEAD_KEY) as Head | undefined;
    this.#clock = new HybridClock(this.name, this.#wallClock, head?.clock);
    this.#loadCommitted();
    if (this.#guard.getEntry(GUARD_KEY) === undefined) {
      // A new store (or one from before the guard): the counter starts at 0. On a full
      // disk this cannot be written; the store then starts refusing writes, and the
      // first commit possible again writes it.
      try {
        this.#guard.putSync(GUARD_KEY, 0, 0);
      } catch (err) {
        void this.#gate.commitFailed(err);
        this.#settled = true;
      }
    }
    // Per-commit state (cursors, table stats, head) is written once per batch, in the
    // same LMDB transaction as the writes that changed it, instead of once per write.
    env.on('beforecommit', () => this.#flushMeta());
    const interval = options.pruneIntervalMs ?? 10_000;
    if (interval > 0) {
      this.#pruneTimer = setInterval(() => void this.prune().catch((err: unknown) => this.#logPruneFailure(err)), interval);
      this.#pruneTimer.unref();
    }
    if (checkIntervalMs > 0) {
      this.#spaceTimer = setInterval(() => this.#checkSpace(), checkIntervalMs);
      this.#spaceTimer.unref();
    }
  }

  /**
   * Opens (or creates) the store at `options.path`. Creating one needs
   * {@link NEW_STORE_MIN_FREE_BYTES} free: LMDB maps its new lock file and touching a page
   * of it on a full filesystem kills the process with SIGBUS, so a new store on a full
   * disk is refused with {@link StorageFullError} instead. An existing store opens on a
   * full disk (it serves reads; see {@link storage}).
   */
  static open(options: StoreOptions): Store {
    const fresh = !existsSync(join(options.path, 'data.mdb')) || !existsSync(join(options.path, 'lock.mdb'));
    if (fresh) {
      let free: number | undefined;
      try {
        // the directory may not exist yet: measure where it will be created
        let dir = options.path;
        while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
        free = (options.statFs ?? statFs)(dir).freeBytes;
      } catch {
        // cannot be measured: lmdb-js tries, and says so if it cannot
      }
      if (free !== undefined && free < NEW_STORE_MIN_FREE_BYTES) {
        throw new StorageFullError('noSpace', free, NEW_STORE_MIN_FREE_BYTES, { detail: `cannot create a store in ${options.path}: ${free} bytes free on its filesystem, at least ${NEW_STORE_MIN_FREE_BYTES} needed` });
      }
    }
    // overlappingSync: a commit resolves once visible; `flushed` waits for the disk sync,
    // of that very batch (separateFlushed): env.flushed waits for the newest batch, and
    // a failed batch is never flushed.
    const env = open({ path: options.path, overlappingSync: true, separateFlushed: true });
    return new Store(env, options);
  }

  // ---------------------------------------------------------------- local writes

  /**
   * Writes a record. `insert` refuses an id that holds a live record
   * ({@link RecordExistsError}); `upsert` replaces it. Resolves after the commit.
   */
  async put(table: string, value: RecordValue, mode: 'insert' | 'upsert' = 'upsert'): Promise<WriteResult> {
    this.#checkOpen();
    validate(table, value, this.#maxDepth);
    const id = value.id;
    const result = await this.#commit('local', () => {
      const prev = this.#readRecord(table, id);
      const existed = prev?.d !== undefined;
      if (existed && mode === 'insert') return undefined;
      const version = this.#clock.now();
      this.#writeRecord(table, id, prev, { v: version, d: value });
      const seq = this.#appendOwn(table, id, version, 'put', value);
      return { seq, version, created: !existed };
    });
    if (result === undefined) throw new RecordExistsError(table, id);
    return result;
  }

  /** Deletes a record with a versioned tombstone. Resolves undefined when there was no live record. */
  async delete(table: string, id: string): Promise<WriteResult | undefined> {
    this.#checkOpen();
    validateKey(table, id);
    return this.#commit('local', () => {
      const prev = this.#readRecord(table, id);
      if (prev?.d === undefined) return undefined;
      const version = this.#clock.now();
      this.#writeRecord(table, id, prev, { v: version });
      const seq = this.#appendOwn(table, id, version, 'delete', undefined);
      return { seq, version, created: false };
    });
  }

  /** The live record, or undefined (missing or deleted). */
  get(table: string, id: string): RecordValue | undefined {
    this.#checkOpen();
    validateKey(table, id);
    return this.#records.get(recordKey(table, id))?.d;
  }

  /** Every live record of `table`, in id order (a read snapshot: commits made meanwhile are not seen). */
  *scan(table: string): Generator<RecordValue> {
    this.#checkOpen();
    if (!isStoredTableName(table)) throw new InvalidTableError(String(table));
    for (const { value } of this.#records.getRange({ start: recordKey(table, ''), end: [`${table}\u0000`] as unknown as RecordKey, snapshot: true })) {
      if (value.d !== undefined) yield value.d;
    }
  }

  /** The stored version of a record, tombstones included. */
  versionOf(table: string, id: string): Version | undefined {
    this.#checkOpen();
    return this.#records.get(recordKey(table, id))?.v;
  }

  /** Whether a write to `table` has committed here. */
  hasTable(table: string): boolean {
    this.#checkOpen();
    return this.#meta.get(tableKey(table)) !== undefined;
  }

  /** Count and digest of every table, as committed (staged writes are not counted yet). */
  /** One table's committed stats (one read, where {@link tables} reads every table), or undefined for a table never written. */
  tableStats(table: string): TableStats | undefined {
    this.#checkOpen();
    const s = this.#meta.get(tableKey(table)) as StoredTableStats | undefined;
    return s && { count: s.count, digest: Buffer.from(s.digest).toString('hex') };
  }

  tables(): Record<string, TableStats> {
    this.#checkOpen();
    const out: Record<string, TableStats> = {};
    for (const { key, value } of this.#meta.getRange(metaRange(TABLE_PREFIX))) {
      const s = value as StoredTableStats;
      out[metaName(key)] = { count: s.count, digest: Buffer.from(s.digest).toString('hex') };
    }
    return out;
  }

  // ---------------------------------------------------------------- LocalNode

  lastSeq(): number {
    return this.#committedSeq;
  }

  /** The oldest seq still in the log (lastSeq()+1 when the log is empty). */
  firstSeq(): number {
    for (const key of this.#log.getKeys({ limit: 1 })) return key;
    return this.#committedSeq + 1;
  }

  readLog(fromSeq: number, limit: number): LogEntry[] {
    this.#checkOpen();
    const out: LogEntry[] = [];
    const end = this.#committedSeq + 1;
    if (fromSeq >= end || limit <= 0) return out;
    // The recent tail comes from memory (the same objects for every reader); older
    // entries, or ones the ring lost, from LMDB.
    let seq = Math.max(fromSeq, 1);
    for (; seq < end && out.length < limit; seq++) {
      const e = this.#tail.get(seq);
      if (e === undefined) break;
      out.push(e);
    }
    if (seq < end && out.length < limit) {
      for (const { key, value } of this.#log.getRange({ start: seq, end, limit: limit - out.length })) {
        out.push(toEntry(key, value));
      }
    }
    return out;
  }

  cursors(): Cursors {
    this.#checkOpen();
    // Read what is committed, not what a pending transaction has staged.
    const out: Record<string, number> = {};
    for (const { key, value } of this.#meta.getRange(metaRange(CURSOR_PREFIX))) out[metaName(key)] = value as number;
    return out;
  }

  logStart(cursors: Cursors): LogStart {
    this.#checkOpen();
    let from = Number.POSITIVE_INFINITY;
    for (const [origin, have] of Object.entries(this.cursors())) {
      const needed = (cursors[origin] ?? 0) + 1;
      if (needed > have) continue;
      const pos = this.#index.get([origin, needed]);
      if (pos === undefined) {
        return { kind: 'resync', origin, needed, oldest: this.#oldestOriginSeq(origin) };
      }
      from = Math.min(from, pos);
    }
    return { kind: 'stream', fromSeq: Number.isFinite(from) ? from : this.#committedSeq + 1 };
  }

  /**
   * The local log seq of `origin`'s entry number `originSeq`, or undefined when the log
   * does not hold it: never written or applied here, or pruned since. Committed entries
   * only; one index lookup.
   */
  seqOf(origin: string, originSeq: number): number | undefined {
    this.#checkOpen();
    return this.#index.get([origin, originSeq]);
  }

  async applyRemote(entries: readonly LogEntry[]): Promise<ApplyResult> {
    this.#checkOpen();
    let applied = 0;
    let skipped = 0;
    let deferred = 0;
    const appliedVersions: number[] = [];
    await this.#commit('replicated', () => {
      const gapped = new Set<string>();
      const now = this.#wallClock();
      const touched = new Set<string>();
      for (const e of entries) {
        const have = this.#cursors.get(e.origin) ?? 0;
        if (e.originSeq <= have) {
          skipped++;
          continue;
        }
        if (e.originSeq !== have + 1 || gapped.has(e.origin)) {
          gapped.add(e.origin);
          deferred++;
          continue;
        }
        this.#clock.observe(e.version);
        const prev = this.#readRecord(e.table, e.id);
        if (prev === undefined || compareVersions(e.version, prev.v) > 0) {
          this.#writeRecord(e.table, e.id, prev, e.op === 'put' && e.value ? { v: e.version, d: e.value } : { v: e.version });
        }
        const seq = ++this.#seq;
        this.#put(this.#log, seq, [e.origin, e.originSeq, e.table, e.id, e.version, e.op === 'put' ? 0 : 1, e.value ?? null, now]);
        this.#tail.set(e.seq === seq ? e : { ...e, seq });
        this.#put(this.#index, [e.origin, e.originSeq], seq);
        this.#cursors.set(e.origin, e.originSeq);
        touched.add(e.origin);
        appliedVersions.push(e.version[0]);
        applied++;
      }
      for (const origin of touched) this.#dirtyCursors.add(origin);
      if (applied > 0) this.#dirtyHead = true;
      return this.#seq;
    });
    const now = this.#wallClock();
    for (const wall of appliedVersions) this.#lag.observe(Math.max(0, now - wall));
    return { applied, skipped, deferred, cursors: this.cursors() };
  }

  /**
   * Lag of the remote entries applied here since the store opened: from the origin's
   * write (its HLC wall time) to the commit here. Across hosts it includes clock offset.
   */
  lagHistogram(): LagHistogram {
    const { counts, count, sum } = this.#lag.snapshot();
    return { bucketsMs: LAG_BUCKETS_MS, counts, count, sumMs: sum };
  }

  onCommit(listener: (lastSeq: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  snapshot(batchSize: number): Snapshot {
    this.#checkOpen();
    // Cursors first: the records read afterwards hold at least everything they cover.
    const cursors = this.cursors();
    const records = this.#records;
    const batches = function* (): Generator<SnapshotRecord[]> {
      let batch: SnapshotRecord[] = [];
      for (const { key, value } of records.getRange({ snapshot: true })) {
        const [table, id] = key;
        batch.push(value.d === undefined ? { table, id, version: value.v } : { table, id, version: value.v, value: value.d });
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    };
    return { cursors, batches: { [Symbol.iterator]: batches } };
  }

  async mergeSnapshot(records: readonly SnapshotRecord[]): Promise<number> {
    this.#checkOpen();
    for (const r of records) {
      validateKey(r.table, r.id);
      if (r.value !== undefined) validate(r.table, r.value, this.#maxDepth);
    }
    return this.#commit('replicated', () => {
      let changed = 0;
      for (const r of records) {
        this.#clock.observe(r.version);
        const prev = this.#readRecord(r.table, r.id);
        if (prev !== undefined && compareVersions(r.version, prev.v) <= 0) continue;
        this.#writeRecord(r.table, r.id, prev, r.value === undefined ? { v: r.version } : { v: r.version, d: r.value });
        changed++;
      }
      if (changed > 0) this.#dirtyHead = true;
      return changed;
    });
  }

  async adoptCursors(cursors: Cursors): Promise<void> {
    this.#checkOpen();
    await this.#commit('replicated', () => {
      for (const [origin, seq] of Object.entries(cursors)) {
        if (seq > (this.#cursors.get(origin) ?? 0)) {
          this.#cursors.set(origin, seq);
          this.#put(this.#meta, cursorKey(origin), seq);
          // Remembered so verify() can tell a resync's legitimate gap in the log from a bug.
          this.#put(this.#meta, adoptedKey(origin), seq);
        }
      }
      return this.#seq;
    });
  }

  // ---------------------------------------------------------------- retention

  /** Keeps entries with `seq >= fromSeq` from retention for `holder`; undefined releases the hold. */
  retainLog(holder: string, fromSeq: number | undefined): void {
    this.#retention.hold(holder, fromSeq);
  }

  /**
   * Deletes log entries beyond the retention bounds, oldest first, in chunks; the
   * newest entry always stays. Resolves with how many entries were pruned.
   */
  prune(): Promise<number> {
    // A store that refuses writes cannot delete either (deleting writes pages too).
    if (this.#closed || this.#gate.refusing) return Promise.resolve(0);
    this.#pruning ??= this.#pruneNow().finally(() => (this.#pruning = undefined));
    return this.#pruning;
  }

  async #pruneNow(): Promise<number> {
    let total = 0;
    for (;;) {
      if (this.#closed) return total;
      const victims = this.#retention.nextVictims(this.#log, this.#committedSeq, this.#wallClock());
      if (victims.length === 0) return total;
      await this.#commit('maintenance', () => {
        for (const [seq, e] of victims) {
          this.#remove(this.#log, seq);
          this.#remove(this.#index, [e[0], e[1]]);
          this.#tail.clear(seq);
        }
        return 0;
      });
      total += victims.length;
      if (victims.length < PRUNE_CHUNK) return total;
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /** Waits for pending writes, then closes the environment. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pruneTimer);
    clearInterval(this.#spaceTimer);
    this.#gate.close();
    await this.#pruning?.catch(() => {});
    // A failed last commit was reported to its writers already.
    await this.#env.committed.then(undefined, noop);
    if (this.#lastCommitFailed) {
      // lmdb-js's close waits for the last batch's disk flush, which a failed batch never
      // gets: an empty batch (a condition that never holds writes nothing, so it commits
      // even on a full disk) gives it one.
      await this.#guard.ifVersion(GUARD_KEY, -1, noop).catch(noop);
    }
    await this.#env.close();
    this.#listeners.clear();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The storage state: what the store admits now and why (see {@link StorageGate}),
   * free space, the floor, refused writes and failed commits.
   */
  storage(): StorageStatus {
    return this.#gate.status();
  }

  /** See {@link LocalNode.whenWritable}. */
  whenWritable(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreClosedError());
    return this.#gate.whenWritable(signal);
  }

  /**
   * Checks that records, log, index, cursors and table stats agree. Returns the
   * problems found (empty when consistent). Reads the whole store: for tests and
   * operators, not for hot paths.
   */
  verify(): string[] {
    this.#checkOpen();
    const dbs = { records: this.#records, log: this.#log, index: this.#index, meta: this.#meta };
    return verifyStore(dbs, this.tables(), this.cursors());
  }

  // ---------------------------------------------------------------- internals

  /**
   * Stages one logical write: `fn` runs synchronously, reading through the pending
   * overlay and collecting its writes, which are then issued to LMDB asynchronously and
   * together. lmdb-js commits every write issued in one event-loop turn in ONE
   * transaction, so the whole of `fn` is atomic, and concurrent requests share a commit
   * without a round trip to a transaction callback. Resolves after the commit (and the
   * disk flush for `flushed`). `fn` must not throw after it wrote: everything that can
   * fail is checked before it is called.
   *
   * In-memory state (seq, cursors, clock, table stats, the log tail) runs ahead of the
   * commit, and commits are pipelined: a later batch is staged before an earlier one
   * committed. So every batch is written conditional on the guard counter
   * ({@link GUARD_KEY}) holding the number of the batch before it, and advances it: a
   * batch staged behind one that failed writes nothing, and LMDB never holds a log with
   * a hole or a cursor ahead of its entries. After a failure the store refuses writes
   * (the {@link StorageGate} says which and for how long), waits for the commits in
   * flight, and reloads its in-memory state from what LMDB committed.
   */
  async #commit<T>(kind: WriteKind | 'probe', fn: () => T): Promise<T> {
    if (kind !== 'probe') {
      const refused = this.#gate.refusal(kind);
      if (refused !== undefined) throw await refused;
    }
    const ops: StagedWrite[] = [];
    this.#ops = ops;
    let result: T;
    try {
      result = fn();
    } finally {
      this.#ops = undefined;
    }
    if (ops.length === 0) return result;
    const seqAfter = this.#seq;
    const staged = this.#staged;
    this.#staged = [];
    this.#batchHasCommits = true;
    const written = this.#guard.ifVersion(GUARD_KEY, this.#chain, () => {
      for (const [db, key, value] of ops) {
        if (value === REMOVE) void db.remove(key);
        else void db.put(key, value);
      }
    });
    this.#inflight++;
    try {
      if (!(await written)) throw new Error('not written: a commit staged before it failed');
      this.#lastCommitFailed = false;
      if (this.durability === 'flushed') await ((written as Promise<boolean> & { flushed?: Promise<void> }).flushed ?? this.#env.flushed);
      if (seqAfter > this.#committedSeq) {
        this.#committedSeq = seqAfter;
        this.#queueNotify();
      }
    } catch (err) {
      this.#settled = false;
      this.#lastCommitFailed = true;
      if (kind === 'probe') throw err;
      throw await this.#gate.commitFailed(err);
    } finally {
      for (const key of staged) {
        const p = this.#pending.get(key);
        if (p && --p.writers === 0) this.#pending.delete(key);
      }
      if (--this.#inflight === 0 && !this.#settled) this.#reload();
    }
    return result;
  }

  #put<K extends Key, V>(db: Database<V, K>, key: K, value: V): void {
    (this.#ops as StagedWrite[]).push([db as Database<unknown, Key>, key, value]);
  }

  #remove<K extends Key>(db: Database<unknown, K>, key: K): void {
    (this.#ops as StagedWrite[]).push([db as Database<unknown, Key>, key, REMOVE]);
  }

  /** Reads what LMDB committed into the in-memory state: at open, and after a failed commit. */
  #loadCommitted(): void {
    const head = this.#meta.get(HEAD_KEY) as Head | undefined;
    this.#seq = this.#committedSeq = head?.seq ?? 0;
    this.#cursors.clear();
    for (const { key, value } of this.#meta.getRange(metaRange(CURSOR_PREFIX))) this.#cursors.set(metaName(key), value as number);
    this.#tables.clear();
    for (const { key, value } of this.#meta.getRange(metaRange(TABLE_PREFIX))) {
      const s = value as StoredTableStats;
      this.#tables.set(metaName(key), { count: s.count, digest: Buffer.from(s.digest) });
    }
    this.#chain = this.#guard.getEntry(GUARD_KEY)?.version ?? 0;
  }

  /**
   * After a failed commit, once no commit is in flight: drops everything staged that did
   * not commit (seq, cursors, table stats, log tail entries), so the next commit
   * continues from what LMDB holds. The clock keeps its state: it only moves forward.
   */
  #reload(): void {
    const ahead = this.#seq;
    const committed = this.#committedSeq;
    this.#loadCommitted();
    if (this.#committedSeq !== committed) {
      this.#logger.error({ inMemory: committed, inLmdb: this.#committedSeq }, 'store: committed seq differs from the head LMDB holds; using LMDB\'s');
    }
    for (let seq = this.#committedSeq + 1; seq <= ahead; seq++) this.#tail.clear(seq);
    this.#dirtyCursors.clear();
    this.#dirtyTables.clear();
    this.#dirtyHead = false;
    this.#settled = true;
    this.#logger.debug({ lastSeq: this.#committedSeq, dropped: ahead - this.#committedSeq }, 'store: state reloaded from the last commit');
  }

  /** The periodic check: measures free space and, when the store is full and space came back, tries a commit. */
  #checkSpace(): void {
    if (this.#closed) return;
    this.#gate.sample(true);
    if (this.#gate.probeDue() && this.#settled && this.#inflight === 0 && !this.#probing) void this.#probe();
  }

  /** Tries the smallest commit (the head again); if it goes through, the store takes writes again. */
  async #probe(): Promise<void> {
    this.#probing = true;
    try {
      if (this.#guard.getEntry(GUARD_KEY) === undefined) {
        // A store whose guard could not be written at open: it cannot be conditional on itself.
        this.#lastCommitFailed = true;
        await this.#guard.put(GUARD_KEY, 0, this.#chain);
        this.#lastCommitFailed = false;
      } else {
        await this.#commit('probe', () => this.#put(this.#meta, HEAD_KEY, { seq: this.#seq, clock: this.#clock.state() } satisfies Head));
      }
      if (this.#closed) return;
      this.#gate.recovered();
    } catch (err) {
      if (this.#inflight === 0 && !this.#settled) this.#reload();
      this.#gate.probeFailed(err);
    } finally {
      this.#probing = false;
    }
  }

  /** A record as the next commit will see it: staged writes first, then LMDB. */
  #readRecord(table: string, id: string): StoredRecord | undefined {
    const p = this.#pending.get(pendingKey(table, id));
    return p ? p.record : this.#records.get(recordKey(table, id));
  }

  #queueNotify(): void {
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    queueMicrotask(() => {
      this.#notifyQueued = false;
      for (const l of this.#listeners) l(this.#committedSeq);
    });
  }

  #appendOwn(table: string, id: string, version: Version, op: Op, value: RecordValue | undefined): number {
    const seq = ++this.#seq;
    const originSeq = (this.#cursors.get(this.name) ?? 0) + 1;
    this.#cursors.set(this.name, originSeq);
    this.#put(this.#log, seq, [this.name, originSeq, table, id, version, op === 'put' ? 0 : 1, value ?? null, this.#wallClock()]);
    this.#tail.set(
      value === undefined
        ? { seq, origin: this.name, originSeq, table, id, version, op: 'delete' }
        : { seq, origin: this.name, originSeq, table, id, version, op: 'put', value },
    );
    this.#put(this.#index, [this.name, originSeq], seq);
    this.#dirtyCursors.add(this.name);
    this.#dirtyHead = true;
    return seq;
  }

  /**
   * Runs inside lmdb-js's batch, just before it commits: joins the same transaction, and
   * advances the guard counter (see {@link #commit}) under the same condition as the
   * batch's other writes.
   */
  #flushMeta(): void {
    // A batch without commits (close()'s empty one, the probe of a store without a guard
    // counter) has nothing to guard.
    if (!this.#batchHasCommits) return;
    this.#batchHasCommits = false;
    const chain = this.#chain++;
    const written = this.#guard.ifVersion(GUARD_KEY, chain, () => {
      for (const origin of this.#dirtyCursors) void this.#meta.put(cursorKey(origin), this.#cursors.get(origin));
      for (const table of this.#dirtyTables) {
        const s = this.#tables.get(table) as MutableTableStats;
        void this.#meta.put(tableKey(table), { count: s.count, digest: Buffer.from(s.digest) } satisfies StoredTableStats);
      }
      if (this.#dirtyHead) void this.#meta.put(HEAD_KEY, { seq: this.#seq, clock: this.#clock.state() } satisfies Head);
      void this.#guard.put(GUARD_KEY, 0, chain + 1);
    });
    // The batch's commits report its failure. lmdb-js also keeps a promise of its own for
    // the batch (its end marker's) that nobody else holds: taken here once the batch is
    // closed (after this callback), or a failed batch would be an unhandled rejection.
    written.catch(noop);
    queueMicrotask(() => void this.#env.committed.then(undefined, noop));
    this.#dirtyCursors.clear();
    this.#dirtyTables.clear();
    this.#dirtyHead = false;
  }

  #writeRecord(table: string, id: string, prev: StoredRecord | undefined, next: StoredRecord): void {
    this.#put(this.#records, recordKey(table, id), next);
    const key = pendingKey(table, id);
    const p = this.#pending.get(key);
    if (p) {
      p.record = next;
      p.writers++;
    } else {
      this.#pending.set(key, { record: next, writers: 1 });
    }
    this.#staged.push(key);
    let s = this.#tables.get(table);
    if (!s) this.#tables.set(table, (s = { count: 0, digest: Buffer.alloc(DIGEST_BYTES) }));
    if (prev) xorInto(s.digest, recordHash(id, prev.v));
    xorInto(s.digest, recordHash(id, next.v));
    s.count += (next.d !== undefined ? 1 : 0) - (prev?.d !== undefined ? 1 : 0);
    this.#dirtyTables.add(table);
  }

  #oldestOriginSeq(origin: string): number {
    for (const key of this.#index.getKeys({ start: [origin, 0], end: [origin, Number.MAX_SAFE_INTEGER], limit: 1 })) {
      return key[1];
    }
    return 0;
  }

  #logPruneFailure(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#logger.warn({ err: message }, 'store: log retention failed; retrying at the next interval');
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreClosedError();
  }
}

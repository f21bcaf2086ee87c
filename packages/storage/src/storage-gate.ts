import { StorageFailedError, StorageFullError, StoreClosedError, type Logger, type ReplicaError } from '@replica/transport-api';
import { isLackOfSpace, minFreeBytes, type MinFree, type SpaceSample, type StatFs } from './space.js';

/**
 * What the store accepts now:
 * - `writable`: every write.
 * - `low`: free space on the data directory's filesystem is below the floor
 *   (`minFree`): local writes are refused; replicated writes, merges and retention go on,
 *   into the room the floor keeps for them.
 * - `full`: a commit failed for lack of space, or a replicated write found free space
 *   below the engine's reserve (half the floor; see {@link ENGINE_RESERVE_SHARE}): every
 *   write is refused. The store re-checks the space periodically and, once a commit goes
 *   through again, leaves this state by itself.
 * - `failed`: a commit failed for another reason (an I/O error; an engine error, such as
 *   the rare MDB_BAD_TXN lmdb-js raises from its free-list code under load): every write
 *   is refused. LMDB aborted the transaction, so what it holds is the last commit; the
 *   store tries a small commit with back-off (the check interval, doubling to
 *   {@link PROBE_MAX_DELAY_MS}) and leaves this state by itself once one goes through. A
 *   store whose commits keep failing stays here; a restart is then the operator's move.
 * Reads are served in every state.
 */
export const StorageState = { writable: 'writable', low: 'low', full: 'full', failed: 'failed' } as const;
export type StorageState = (typeof StorageState)[keyof typeof StorageState];

/**
 * Whose write it is: local writes stop at the floor, replicated ones at the engine's
 * reserve below it (or when a commit fails), maintenance only when a commit fails.
 */
export type WriteKind = 'local' | 'replicated' | 'maintenance';

/** The store's storage state, for `/status`, `/ready` and metrics. */
export interface StorageStatus {
  readonly state: StorageState;
  /** Why writes are refused, for operators; absent while writable. */
  readonly reason?: string;
  /** When the store entered this state (ms since the epoch). */
  readonly sinceMs: number;
  /** Free bytes on the data directory's filesystem at the last measurement (absent when it cannot be measured). */
  readonly freeBytes?: number;
  /** Size of that filesystem in bytes (absent when it cannot be measured). */
  readonly totalBytes?: number;
  /** The floor below which local writes are refused, in bytes (0: none). */
  readonly minFreeBytes: number;
  /** Writes refused since the store opened, by the state that refused them (counters). */
  readonly refusedWrites: Readonly<Record<'low' | 'full' | 'failed', number>>;
  /** Commits that failed since the store opened (a counter). */
  readonly failedCommits: number;
  /** The storage engine's error of the failed commit behind `full` or `failed`. */
  readonly cause?: { readonly message: string; readonly code?: string | number };
}

/** How old a free-space measurement may be when a local write asks for it… */
export const SAMPLE_MAX_AGE_MS = 100;
/**
 * …unless the last one found less than this many floors free: then every local write
 * measures (a statfs), since 100 ms of writes can be more than the floor on a small disk
 * (a 3 MiB filesystem's 5 % is 150 KiB), and the floor would be overrun before it is seen.
 */
export const NEAR_FLOOR_FACTOR = 4;
/**
 * Replicated writes stop, and the store turns `full`, when free space falls below the
 * floor times this: the storage engine's reserve. A commit that runs out of space is
 * handled, but lmdb-js's native code is fragile right after one (twice in about twelve
 * test runs here, the node process died of heap corruption moments after an ENOSPC
 * commit failure), so the store stops before the filesystem is full whenever it can see
 * it coming. A batch larger than the reserve can still run out: that is the fallback.
 */
export const ENGINE_RESERVE_SHARE = 0.5;
/** `low` ends once free space is back above the floor times this (so it does not flap at the floor). */
export const LOW_HYSTERESIS = 1.1;
/** A `full` store tries a commit only with at least this much free space (or the floor, if larger). */
export const PROBE_MIN_FREE_BYTES = 256 * 1024;
/** Failed probes back off from the check interval up to this, unless free space grew. */
export const PROBE_MAX_DELAY_MS = 30_000;
/** Free space that must have come back since a failed probe to try again before the back-off ends. */
export const PROBE_GROWTH_BYTES = 64 * 1024;
/**
 * How long to wait for lmdb-js's `commitError` before classifying without the engine's
 * error code (it settles at once, except when two failed batches race inside lmdb-js).
 */
const CAUSE_WAIT_MS = 100;

export interface StorageGateOptions {
  /** The data directory (its filesystem is measured). */
  readonly path: string;
  readonly minFree: MinFree;
  readonly statFs: StatFs;
  readonly logger: Logger;
  /** The periodic re-check's interval (the first probe delay). */
  readonly checkIntervalMs: number;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * The store's storage state machine (see {@link StorageState}): which writes it admits,
 * what a failed commit means, when a `full` store should try a commit again, who waits
 * for it to be writable, and the one log line per change. The store does the commits.
 */
export class StorageGate {
  #state: StorageState = StorageState.writable;
  #sinceMs = Date.now();
  #sample: SpaceSample | undefined;
  #sampledAt = 0;
  #floor = 0;
  #unmeasurable = false;
  /**
   * Set from the first failed commit until writes are possible again: resolves once
   * the failure is classified (`full` or `failed`). Every write is refused meanwhile.
   */
  #episode: Promise<void> | undefined;
  #cause: { message: string; code?: string | number } | undefined;
  #error: unknown;
  /** The `full` episode began at the engine's reserve, before any commit failed. */
  #atReserve = false;
  readonly #refused = { low: 0, full: 0, failed: 0 };
  #failedCommits = 0;
  readonly #waiters = new Set<Waiter>();
  #probeDelayMs: number;
  #nextProbeMs = 0;
  #lastProbeFree: number | undefined;

  constructor(private readonly o: StorageGateOptions) {
    this.#probeDelayMs = o.checkIntervalMs;
    this.sample(true);
  }

  get state(): StorageState {
    return this.#state;
  }

  /** Every write is refused (a commit failed, and no commit went through since). */
  get refusing(): boolean {
    return this.#episode !== undefined;
  }

  /** Measures free space (unless a measurement younger than {@link SAMPLE_MAX_AGE_MS} exists) and enters or leaves `low`. */
  sample(force = false): void {
    const now = Date.now();
    const near = this.#sample !== undefined && this.#sample.freeBytes < this.#floor * NEAR_FLOOR_FACTOR;
    if (!force && !near && now - this.#sampledAt < SAMPLE_MAX_AGE_MS) return;
    this.#sampledAt = now;
    try {
      this.#sample = this.o.statFs(this.o.path);
      this.#unmeasurable = false;
    } catch (err) {
      if (!this.#unmeasurable) this.o.logger.warn({ path: this.o.path, err: (err as Error).message }, 'store: cannot measure free space; the free-space floor does not apply until it can');
      this.#unmeasurable = true;
      this.#sample = undefined;
    }
    this.#floor = minFreeBytes(this.o.minFree, this.#sample?.totalBytes);
    const free = this.#sample?.freeBytes;
    if (this.#state === StorageState.writable && free !== undefined && free < this.#floor) {
      this.#enter(StorageState.low);
      this.o.logger.warn(
        { freeBytes: free, minFreeBytes: this.#floor, path: this.o.path },
        'store: free space below the floor (MIN_FREE_BYTES): local writes are refused (507 REPLICA_ERR_STORAGE_FULL); replication goes on',
      );
    } else if (this.#state === StorageState.low && (free === undefined || free >= this.#floor * LOW_HYSTERESIS)) {
      this.#enter(StorageState.writable);
      this.o.logger.info({ freeBytes: free, minFreeBytes: this.#floor }, 'store: free space back above the floor: local writes accepted again');
    }
  }

  /**
   * Why a write of `kind` must not start now: undefined when it may; the error (or, while
   * a failed commit is being classified, a promise of it) otherwise.
   */
  refusal(kind: WriteKind): ReplicaError | Promise<ReplicaError> | undefined {
    if (this.#episode) return this.#episode.then(() => this.#refuse());
    if (kind === 'maintenance') return undefined;
    this.sample();
    if (kind === 'replicated') {
      const free = this.#sample?.freeBytes;
      const reserve = Math.floor(this.#floor * ENGINE_RESERVE_SHARE);
      return free !== undefined && free < reserve ? this.#reserveReached(free, reserve) : undefined;
    }
    if (this.#state !== StorageState.low) return undefined;
    this.#refused.low++;
    return new StorageFullError('lowSpace', this.#sample?.freeBytes, this.#floor);
  }

  /** Replicated writes reached the engine's reserve: `full` from now on, before any commit fails. */
  #reserveReached(free: number, reserve: number): ReplicaError {
    this.#atReserve = true;
    this.#cause = { message: `free space ${free} bytes is below the storage engine's reserve of ${reserve} bytes (half of MIN_FREE_BYTES)` };
    this.#episode = Promise.resolve();
    this.#enter(StorageState.full);
    this.#nextProbeMs = Date.now() + this.o.checkIntervalMs;
    this.o.logger.error(
      { freeBytes: free, reserveBytes: reserve, minFreeBytes: this.#floor, path: this.o.path },
      "store: free space below the storage engine's reserve: every write is refused (507 REPLICA_ERR_STORAGE_FULL) before the disk is full, reads go on; writes resume by themselves once space returns",
    );
    return this.#refuse();
  }

  /**
   * A commit failed with `err` (lmdb-js's "Commit failed", whose `commitError` holds the
   * engine's error). From now on every write is refused; the first failure decides, once
   * its cause is known, between `full` and `failed`. Resolves with the error the failed
   * commit's writers get.
   */
  commitFailed(err: unknown): Promise<ReplicaError> {
    this.#failedCommits++;
    this.#episode ??= this.#classify(err);
    return this.#episode.then(() => this.#refuse());
  }

  /** A commit went through while every write was refused (the probe): writes are possible again. */
  recovered(): void {
    const since = this.#sinceMs;
    const was = this.#state;
    this.#episode = undefined;
    this.#cause = undefined;
    this.#error = undefined;
    this.#atReserve = false;
    this.#probeDelayMs = this.o.checkIntervalMs;
    this.#nextProbeMs = 0;
    this.#lastProbeFree = undefined;
    this.#enter(StorageState.writable);
    this.sample(true);
    this.o.logger[was === StorageState.failed ? 'warn' : 'info'](
      { was, refusedForMs: Date.now() - since, freeBytes: this.#sample?.freeBytes, state: this.#state },
      this.#state === StorageState.low ? 'store: commits possible again; replicated writes accepted, local writes still refused below the floor' : 'store: commits possible again; writes accepted',
    );
    for (const w of this.#waiters) w.resolve();
    this.#waiters.clear();
  }

  /**
   * Whether the store should try a commit now: `failed` and not backing off, or `full`
   * with enough free space (or none measurable) and not backing off unless space grew.
   */
  probeDue(): boolean {
    if (this.#episode === undefined) return false;
    if (this.#state === StorageState.failed) return Date.now() >= this.#nextProbeMs;
    if (this.#state !== StorageState.full) return false;
    const free = this.#sample?.freeBytes;
    if (free !== undefined && free < Math.max(this.#floor, PROBE_MIN_FREE_BYTES)) return false;
    const grew = free !== undefined && this.#lastProbeFree !== undefined && free >= this.#lastProbeFree + PROBE_GROWTH_BYTES;
    return grew || Date.now() >= this.#nextProbeMs;
  }

  /** The probe's commit failed: try again later, sooner if free space grows. */
  probeFailed(err: unknown): void {
    this.#lastProbeFree = this.#sample?.freeBytes;
    this.#nextProbeMs = Date.now() + this.#probeDelayMs;
    this.#probeDelayMs = Math.min(this.#probeDelayMs * 2, PROBE_MAX_DELAY_MS);
    this.o.logger.debug({ err: (err as Error).message, freeBytes: this.#lastProbeFree, nextInMs: this.#nextProbeMs - Date.now() }, 'store: a commit is not possible yet');
  }

  /** Resolves once writes other than local ones are admitted (at once if they are now). */
  whenWritable(signal?: AbortSignal): Promise<void> {
    if (this.#episode === undefined) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const abort = () => {
        this.#waiters.delete(w);
        reject(signal?.reason);
      };
      const w: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', abort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', abort);
          reject(err);
        },
      };
      this.#waiters.add(w);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /** The store closed: nobody waits for it any more. */
  close(): void {
    for (const w of this.#waiters) w.reject(new StoreClosedError());
    this.#waiters.clear();
  }

  status(): StorageStatus {
    const s = this.#sample;
    return {
      state: this.#state,
      ...(this.#reason() !== undefined ? { reason: this.#reason() as string } : {}),
      sinceMs: this.#sinceMs,
      ...(s ? { freeBytes: s.freeBytes, totalBytes: s.totalBytes } : {}),
      minFreeBytes: this.#floor,
      refusedWrites: { ...this.#refused },
      failedCommits: this.#failedCommits,
      ...(this.#cause ? { cause: { ...this.#cause } } : {}),
    };
  }

  #reason(): string | undefined {
    const free = this.#sample?.freeBytes;
    switch (this.#state) {
      case StorageState.writable:
        return undefined;
      case StorageState.low:
        return `free space ${free} bytes is below the floor of ${this.#floor} (MIN_FREE_BYTES): local writes refused, replication goes on`;
      case StorageState.full:
        return `storage full: ${this.#atReserve ? this.#cause?.message : `a commit failed for lack of space (${this.#cause?.message})`}; every write refused, reads served; re-checking every ${this.o.checkIntervalMs} ms`;
      case StorageState.failed:
        return `storage failed: a commit failed, not for lack of space (${this.#cause?.message}); every write refused, reads served; a commit is tried again with back-off (now every ${this.#probeDelayMs} ms), and writes resume once one goes through; restart the node if it does not recover`;
    }
  }

  #refuse(): ReplicaError {
    if (this.#state === StorageState.failed) {
      this.#refused.failed++;
      return new StorageFailedError(`a commit failed: ${this.#cause?.message}`, { cause: this.#error });
    }
    this.#refused.full++;
    if (this.#atReserve) {
      return new StorageFullError('noSpace', this.#sample?.freeBytes, this.#floor, { detail: `${this.#cause?.message}; writes are refused until space returns, reads go on` });
    }
    return new StorageFullError('noSpace', this.#sample?.freeBytes, this.#floor, { cause: this.#error });
  }

  async #classify(err: unknown): Promise<void> {
    const cause = await engineError(err);
    this.sample(true);
    const code = (cause as { code?: string | number } | null)?.code;
    this.#cause = { message: (cause as Error | null)?.message ?? String(cause), ...(code !== undefined ? { code } : {}) };
    this.#error = cause;
    const noSpace = isLackOfSpace(code, this.#sample, this.#floor);
    this.#enter(noSpace ? StorageState.full : StorageState.failed);
    this.#nextProbeMs = Date.now() + this.o.checkIntervalMs;
    const fields = { cause: this.#cause.message, code, freeBytes: this.#sample?.freeBytes, totalBytes: this.#sample?.totalBytes, path: this.o.path };
    if (noSpace) {
      this.o.logger.error(fields, 'store: a commit failed for lack of space: every write is refused (507 REPLICA_ERR_STORAGE_FULL), nothing of it was written, reads go on; writes resume by themselves once space returns');
    } else {
      this.o.logger.error(fields, 'store: a commit failed, not for lack of space: every write is refused (503 REPLICA_ERR_STORAGE_FAILED), nothing of it was written, reads go on; a commit is tried again with back-off, and writes resume once one goes through');
    }
  }

  #enter(state: StorageState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#sinceMs = Date.now();
  }
}

/**
 * The storage engine's error behind a failed commit: lmdb-js rejects a failed batch's
 * writes with "Commit failed" and puts the engine's error (with its errno or LMDB code)
 * in the `commitError` promise.
 */
async function engineError(err: unknown): Promise<unknown> {
  const commitError = (err as { commitError?: unknown } | null)?.commitError;
  if (!(commitError instanceof Promise)) return err;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<unknown>((resolve) => {
    timer = setTimeout(() => resolve(err), CAUSE_WAIT_MS);
    timer.unref();
  });
  try {
    return await Promise.race([commitError.then(() => err, (e: unknown) => e), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

import { StorageState, type Store } from '@replica/storage';
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The store's storage state as metrics: which state it is in (a full disk, free space
 * below the floor, failed storage), free space and the floor, refused writes and failed
 * commits. Read from the store at each scrape. Kept apart from the other metrics so that
 * each stays one block.
 */
export class StorageMetrics {
  readonly #state: Gauge<'state'>;
  readonly #free: Gauge;
  readonly #size: Gauge;
  readonly #floor: Gauge;
  readonly #refused: Counter<'state'>;
  readonly #failed: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#state = new Gauge({
      name: 'replica_storage_state',
      help: 'The storage state: 1 for the current one (writable; low: below MIN_FREE_BYTES, local writes refused; full: a commit found no space, or replicated writes reached half of MIN_FREE_BYTES, every write refused; failed: a commit failed for another reason, every write refused until a retried commit goes through).',
      labelNames: ['state'],
      registers,
    });
    this.#free = new Gauge({ name: 'replica_storage_free_bytes', help: "Free bytes on the data directory's filesystem, at the last measurement (every second).", registers });
    this.#size = new Gauge({ name: 'replica_storage_size_bytes', help: "Size of the data directory's filesystem in bytes.", registers });
    this.#floor = new Gauge({ name: 'replica_storage_min_free_bytes', help: 'The free-space floor (MIN_FREE_BYTES) in bytes: below it local writes are refused.', registers });
    this.#refused = new Counter({ name: 'replica_storage_refused_writes_total', help: 'Writes refused for lack of space or failed storage, by the state that refused them.', labelNames: ['state'], registers });
    this.#failed = new Counter({ name: 'replica_storage_failed_commits_total', help: 'Store commits that failed (for lack of space or otherwise).', registers });
  }

  /** Sets every series from the store's storage report. */
  update(store: Store): void {
    const s = store.storage();
    for (const state of Object.values(StorageState)) this.#state.set({ state }, s.state === state ? 1 : 0);
    // absent when the filesystem cannot be measured
    this.#free.reset();
    this.#size.reset();
    if (s.freeBytes !== undefined && s.totalBytes !== undefined) {
      this.#free.set(s.freeBytes);
      this.#size.set(s.totalBytes);
    }
    this.#floor.set(s.minFreeBytes);
    this.#refused.reset();
    for (const [state, n] of Object.entries(s.refusedWrites)) this.#refused.inc({ state }, n);
    this.#failed.reset();
    this.#failed.inc(s.failedCommits);
  }
}

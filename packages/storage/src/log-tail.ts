import type { LogEntry } from '@replica/transport-api';

/**
 * The newest log entries in memory, in a fixed ring of slots by seq: readers of the
 * log tail (the replication hot path) get the writer's own entry objects, shared by
 * every reader, without decoding them from LMDB. It is a cache, not a record:
 * {@link get} answers only with the entry of exactly that seq, so a slot taken by a
 * newer entry or cleared reads as a miss (the caller falls back to LMDB), never as a
 * wrong entry.
 */
export class LogTail {
  readonly #ring: (LogEntry | undefined)[];

  /** Keeps the newest `size` entries (at least one). */
  constructor(size: number) {
    this.#ring = new Array<LogEntry | undefined>(Math.max(1, size));
  }

  /** The cached entry with `seq`, or undefined. */
  get(seq: number): LogEntry | undefined {
    const e = this.#ring[seq % this.#ring.length];
    return e?.seq === seq ? e : undefined;
  }

  /** Caches `entry`, replacing whichever older entry shared its slot. */
  set(entry: LogEntry): void {
    this.#ring[entry.seq % this.#ring.length] = entry;
  }

  /** Forgets the entry with `seq` (pruned from the log); leaves a newer one in its slot alone. */
  clear(seq: number): void {
    const slot = seq % this.#ring.length;
    if (this.#ring[slot]?.seq === seq) this.#ring[slot] = undefined;
  }
}

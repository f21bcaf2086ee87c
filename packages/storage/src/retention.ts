import type { Database } from 'lmdb';
import type { StoredEntry } from './schema.js';

/** Log entries deleted per transaction: bounds how long one prune holds the writer. */
export const PRUNE_CHUNK = 10_000;

/** The retention bounds of a store that sets none: a million entries, a week. */
export const DEFAULT_RETENTION = { maxEntries: 1_000_000, maxAgeMs: 7 * 24 * 3600_000 } as const;

/** Where retention cuts the log this time; an entry stays if any of these protects it. */
export interface PruneCut {
  /** Entries from this seq on are within the count bound. */
  readonly keepFrom: number;
  /** Entries appended at or after this time (ms) are within the age bound. */
  readonly minAppendedMs: number;
  /** The oldest seq a holder still needs (Infinity when none holds any). */
  readonly heldFrom: number;
}

/**
 * The entries retention deletes, from `entries` (the oldest of the log, in seq order):
 * the leading run of entries beyond the count or the age bound that no holder needs.
 * It stops at the first entry that stays, so the log never gets a hole.
 */
export function selectVictims(entries: Iterable<{ key: number; value: StoredEntry }>, cut: PruneCut): [number, StoredEntry][] {
  const victims: [number, StoredEntry][] = [];
  for (const { key, value } of entries) {
    if ((key >= cut.keepFrom && value[7] >= cut.minAppendedMs) || key >= cut.heldFrom) break;
    victims.push([key, value]);
  }
  return victims;
}

/**
 * The store's log retention: the bounds, and the holds of whoever still needs old
 * entries (an outbox that has not shipped them). Entries a holder needs stay whatever
 * their age or count; the newest entry always stays. It only chooses what to delete;
 * the store deletes it.
 */
export class Retention {
  readonly maxEntries: number;
  readonly maxAgeMs: number;
  /** Holder → first seq it still needs. */
  readonly #holds = new Map<string, number>();

  constructor(bounds: { readonly maxEntries?: number; readonly maxAgeMs?: number } = {}) {
    const b = { ...DEFAULT_RETENTION, ...bounds };
    this.maxEntries = b.maxEntries;
    this.maxAgeMs = b.maxAgeMs;
  }

  /** `holder` needs the log from `fromSeq` on; undefined releases its hold. */
  hold(holder: string, fromSeq: number | undefined): void {
    if (fromSeq === undefined) this.#holds.delete(holder);
    else this.#holds.set(holder, fromSeq);
  }

  /** The cut for a log whose newest entry is `lastSeq`, at wall time `now`. */
  cut(lastSeq: number, now: number): PruneCut {
    let heldFrom = Number.POSITIVE_INFINITY;
    for (const from of this.#holds.values()) heldFrom = Math.min(heldFrom, from);
    return { keepFrom: lastSeq - this.maxEntries + 1, minAppendedMs: now - this.maxAgeMs, heldFrom };
  }

  /**
   * The next chunk to delete (at most {@link PRUNE_CHUNK}, oldest first) from a log
   * whose newest committed entry is `lastSeq`; that entry is never among them.
   */
  nextVictims(log: Pick<Database<StoredEntry, number>, 'getRange'>, lastSeq: number, now: number): [number, StoredEntry][] {
    const cut = this.cut(lastSeq, now);
    return selectVictims(log.getRange({ end: lastSeq, limit: PRUNE_CHUNK }), cut);
  }
}

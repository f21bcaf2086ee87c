import { describe, expect, it } from 'vitest';
import { PRUNE_CHUNK, Retention, selectVictims, type PruneCut } from '../src/retention.js';
import type { StoredEntry } from '../src/schema.js';

/** A stored log of `appendedMs` times, seq 1 upward. */
const log = (...appendedMs: number[]) =>
  appendedMs.map((ms, i): { key: number; value: StoredEntry } => ({ key: i + 1, value: ['n', i + 1, 't', `k${i}`, [ms, 0, 'n'], 1, null, ms] }));
const seqs = (victims: [number, StoredEntry][]) => victims.map(([seq]) => seq);
const none: PruneCut = { keepFrom: Number.POSITIVE_INFINITY, minAppendedMs: Number.POSITIVE_INFINITY, heldFrom: Number.POSITIVE_INFINITY };

describe('retention victim selection', () => {
  it('takes entries beyond the count bound even when they are young', () => {
    expect(seqs(selectVictims(log(9, 9, 9, 9, 9), { ...none, keepFrom: 4, minAppendedMs: 0 }))).toEqual([1, 2, 3]);
  });

  it('takes entries beyond the age bound even when the count allows them', () => {
    expect(seqs(selectVictims(log(1, 2, 5, 6), { ...none, keepFrom: 1, minAppendedMs: 5 }))).toEqual([1, 2]);
  });

  it('stops at the first entry that stays, leaving no hole in the log', () => {
    // entry 2 is young (appended late, e.g. a clock step back): 3 and 4 stay too, though old.
    expect(seqs(selectVictims(log(1, 9, 1, 1), { ...none, keepFrom: 1, minAppendedMs: 5 }))).toEqual([1]);
  });

  it('never takes an entry a holder needs', () => {
    expect(seqs(selectVictims(log(1, 1, 1, 1), { ...none, minAppendedMs: 5, heldFrom: 3 }))).toEqual([1, 2]);
    expect(seqs(selectVictims(log(1, 1), { keepFrom: 10, minAppendedMs: 5, heldFrom: 1 }))).toEqual([]);
  });

  it('cuts at the oldest hold and at both bounds', () => {
    const r = new Retention({ maxEntries: 10, maxAgeMs: 1000 });
    expect(r.cut(100, 5000)).toEqual({ keepFrom: 91, minAppendedMs: 4000, heldFrom: Number.POSITIVE_INFINITY });
    r.hold('a', 50);
    r.hold('b', 30);
    expect(r.cut(100, 5000).heldFrom).toBe(30);
    r.hold('b', undefined);
    expect(r.cut(100, 5000).heldFrom).toBe(50);
  });

  it('defaults to a million entries and a week, and keeps a bound it is not given', () => {
    expect(new Retention()).toMatchObject({ maxEntries: 1_000_000, maxAgeMs: 7 * 24 * 3600_000 });
    expect(new Retention({ maxEntries: 5 })).toMatchObject({ maxEntries: 5, maxAgeMs: 7 * 24 * 3600_000 });
  });

  it('reads one chunk below the newest entry', () => {
    const ranges: unknown[] = [];
    const r = new Retention({ maxEntries: 1, maxAgeMs: 0 });
    const victims = r.nextVictims({ getRange: (o) => (ranges.push(o), log(1, 1, 1) as never) }, 4, 10);
    expect(ranges).toEqual([{ end: 4, limit: PRUNE_CHUNK }]);
    expect(seqs(victims)).toEqual([1, 2, 3]);
  });
});

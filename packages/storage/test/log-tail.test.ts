import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@replica/transport-api';
import { LogTail } from '../src/log-tail.js';

const entry = (seq: number): LogEntry => ({ seq, origin: 'n', originSeq: seq, table: 't', id: `k${seq}`, version: [1, seq, 'n'], op: 'delete' });

describe('LogTail', () => {
  it('answers the newest size entries with the same objects, and misses the rest', () => {
    const tail = new LogTail(4);
    const entries = Array.from({ length: 10 }, (_, i) => entry(i + 1));
    for (const e of entries) tail.set(e);
    for (let seq = 7; seq <= 10; seq++) expect(tail.get(seq)).toBe(entries[seq - 1]);
    for (let seq = 0; seq <= 6; seq++) expect(tail.get(seq)).toBeUndefined();
    expect(tail.get(11)).toBeUndefined();
  });

  it('clears only the entry it is asked to, not a newer one in the same slot', () => {
    const tail = new LogTail(4);
    tail.set(entry(3));
    tail.set(entry(7)); // same slot as 3
    tail.clear(3);
    expect(tail.get(7)?.seq).toBe(7);
    tail.clear(7);
    expect(tail.get(7)).toBeUndefined();
  });

  it('keeps at least one entry whatever size it is given', () => {
    const tail = new LogTail(0);
    tail.set(entry(5));
    expect(tail.get(5)?.seq).toBe(5);
    tail.set(entry(6));
    expect(tail.get(5)).toBeUndefined();
  });
});

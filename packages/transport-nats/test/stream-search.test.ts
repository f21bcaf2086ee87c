import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@replica/transport-api';
import { firstEntryAfter, streamSeqOf, type StreamReader } from '../src/stream-search.js';

const entry = (originSeq: number): LogEntry => ({ seq: originSeq, origin: 'n0', originSeq, table: 't', id: `k${originSeq}`, version: [1, 0, 'n0'], op: 'put', value: { id: `k${originSeq}` } });

/**
 * A stream whose message at stream seq `firstSeq + i` holds the origin sequences
 * `messages[i]`. `discard(reads)` may drop messages from the front as reads happen.
 */
function stream(messages: number[][], firstSeq = 1, discard: (reads: number) => number = () => 0) {
  const held = new Map(messages.map((m, i) => [firstSeq + i, m.map(entry)]));
  const lastSeq = firstSeq + messages.length - 1;
  let reads = 0;
  let first = firstSeq;
  const reader: StreamReader = {
    state: async () => ({ messages: held.size, firstSeq: held.size === 0 ? lastSeq + 1 : first, lastSeq }),
    entries: async (seq) => {
      reads++;
      for (const gone = Math.min(lastSeq + 1, firstSeq + discard(reads)); first < gone; first++) held.delete(first);
      return held.get(seq);
    },
  };
  return { reader, reads: () => reads };
}

describe('stream binary search', () => {
  const batches = [[1, 2, 3], [4], [5, 6], [7, 8, 9, 10], [11]];

  it('finds the first message whose entries reach an origin sequence', async () => {
    const s = stream(batches, 100).reader;
    expect(await streamSeqOf(s, 1)).toBe(100);
    expect(await streamSeqOf(s, 3)).toBe(100);
    expect(await streamSeqOf(s, 4)).toBe(101);
    expect(await streamSeqOf(s, 6)).toBe(102);
    expect(await streamSeqOf(s, 8)).toBe(103);
    expect(await streamSeqOf(s, 11)).toBe(104);
  });

  it('answers the next stream sequence for an origin sequence past the end', async () => {
    expect(await streamSeqOf(stream(batches, 100).reader, 12)).toBe(105);
    expect(await firstEntryAfter(stream(batches, 100).reader, 11)).toBeUndefined();
  });

  it('answers the next stream sequence for an empty stream, without reading a message', async () => {
    const empty = stream([], 43);
    expect(await streamSeqOf(empty.reader, 1)).toBe(43);
    expect(empty.reads()).toBe(0);
    expect(await firstEntryAfter(stream([], 43).reader, 0)).toBeUndefined();
  });

  it('reads a logarithmic number of messages', async () => {
    const s = stream(Array.from({ length: 1024 }, (_, i) => [i + 1]));
    expect(await streamSeqOf(s.reader, 700)).toBe(700);
    expect(s.reads()).toBeLessThanOrEqual(11);
  });

  it('counts messages discarded from the front while it searches as before the answer', async () => {
    // Every read discards one more message from the front: messages 1 and 2 (entries 1–4) are gone
    // by the time the search reads message 2, so the answer is the first one still held.
    expect(await streamSeqOf(stream(batches, 1, (reads) => reads).reader, 2)).toBe(3);
    // Gone before the search began: the first message still held answers.
    expect(await streamSeqOf(stream(batches, 1, () => 2).reader, 1)).toBe(3);
  });

  it('gives the first entry of the message after a cursor, and searches again when that message was discarded before it was read', async () => {
    expect((await firstEntryAfter(stream(batches).reader, 4))?.originSeq).toBe(5);
    expect((await firstEntryAfter(stream(batches).reader, 5))?.originSeq).toBe(5); // the message holding 6 starts at 5
    // The message found (seq 1, entries 1–3) is gone by the time it is read: the next search finds seq 2.
    let searches = 0;
    const s = stream(batches, 1, (reads) => (reads > 3 ? 1 : 0));
    const reader: StreamReader = { state: () => (searches++, s.reader.state()), entries: s.reader.entries };
    expect((await firstEntryAfter(reader, 0))?.originSeq).toBe(4);
    expect(searches).toBe(2);
  });

  it('gives up after three searches whose message was always discarded', async () => {
    const reader: StreamReader = { state: async () => ({ messages: 1, firstSeq: 1, lastSeq: 1 }), entries: async () => undefined };
    expect(await firstEntryAfter(reader, 0)).toBeUndefined();
  });
});

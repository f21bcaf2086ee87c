import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { CODEC_VERSION, MalformedFrameError, compareVersions, decodeBatch, encodeBatch, type LogEntry } from '../src/index.js';

const entries: LogEntry[] = [
  { seq: 1, origin: 'n1', originSeq: 1, table: 'users', id: 'a', version: [1700000000000, 0, 'n1'], op: 'put', value: { id: 'a', name: 'Ada', tags: ['x'], n: 1.5, ok: true, nested: { z: null } } },
  { seq: 2, origin: 'n2', originSeq: 7, table: 'users', id: 'b', version: [1700000000001, 3, 'n2'], op: 'delete' },
];
const raw = new Packr({ useRecords: false });

describe('batch codec', () => {
  it('round-trips puts and deletes exactly', () => {
    expect(decodeBatch(encodeBatch(entries))).toEqual(entries);
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });

  it('frames any number of entries (fixarray, array16 and array32 headers) and matches plain msgpack', () => {
    for (const n of [0, 14, 15, 16, 1000, 70_000]) {
      const many: LogEntry[] = Array.from({ length: n }, (_, i) => ({ ...(entries[1] as LogEntry), seq: i + 1, originSeq: i + 1 }));
      const bytes = encodeBatch(many);
      expect(decodeBatch(bytes)).toEqual(many);
      if (n === 16) expect(raw.unpack(bytes)).toHaveLength(17);
    }
  });

  it('encodes a shared entry object once and reuses its bytes', () => {
    const e = entries[0] as LogEntry;
    const a = encodeBatch([e]);
    const b = encodeBatch([e, e]);
    expect(decodeBatch(b)).toEqual([e, e]);
    expect(b.length - a.length).toBe(a.length - 2);
  });

  it('is compact: a 400-byte record costs little more than its JSON', () => {
    const value = { id: '8c0c4a3e-7b1f-4b7e-9a59-1f1f1f1f1f1f', bio: 'x'.repeat(330), age: 40, city: 'Geneva' };
    const one: LogEntry = { seq: 10, origin: 'n1', originSeq: 10, table: 'bench', id: value.id, version: [1700000000000, 1, 'n1'], op: 'put', value };
    const batch = encodeBatch(Array.from({ length: 100 }, () => one));
    expect(batch.length / 100).toBeLessThan(JSON.stringify(value).length + 80);
  });

  const bad: [string, unknown][] = [
    ['not an array', { a: 1 }],
    ['an empty array', []],
    ['an unknown codec version', [99]],
    ['an entry that is not a tuple', [CODEC_VERSION, { seq: 1 }]],
    ['a short tuple', [CODEC_VERSION, [1, 'n1', 1]]],
    ['a negative seq', [CODEC_VERSION, [-1, 'n1', 1, 't', 'a', 1, 0, 'n1', 1, null]]],
    ['a fractional originSeq', [CODEC_VERSION, [1, 'n1', 1.5, 't', 'a', 1, 0, 'n1', 1, null]]],
    ['originSeq 0', [CODEC_VERSION, [1, 'n1', 0, 't', 'a', 1, 0, 'n1', 1, null]]],
    ['a bad origin name', [CODEC_VERSION, [1, 'n 1', 1, 't', 'a', 1, 0, 'n1', 1, null]]],
    ['a bad table name', [CODEC_VERSION, [1, 'n1', 1, '9t', 'a', 1, 0, 'n1', 1, null]]],
    ['an empty id', [CODEC_VERSION, [1, 'n1', 1, 't', '', 1, 0, 'n1', 1, null]]],
    ['a string version time', [CODEC_VERSION, [1, 'n1', 1, 't', 'a', '1', 0, 'n1', 1, null]]],
    ['an unknown op', [CODEC_VERSION, [1, 'n1', 1, 't', 'a', 1, 0, 'n1', 2, null]]],
    ['a put without a value', [CODEC_VERSION, [1, 'n1', 1, 't', 'a', 1, 0, 'n1', 0, null]]],
    ['a put whose value is an array', [CODEC_VERSION, [1, 'n1', 1, 't', 'a', 1, 0, 'n1', 0, [1]]]],
    ['a put whose value id differs', [CODEC_VERSION, [1, 'n1', 1, 't', 'a', 1, 0, 'n1', 0, { id: 'b' }]]],
    ['a delete with a value', [CODEC_VERSION, [1, 'n1', 1, 't', 'a', 1, 0, 'n1', 1, { id: 'a' }]]],
  ];
  it.each(bad)('refuses %s with MalformedFrameError', (_name, payload) => {
    expect(() => decodeBatch(raw.pack(payload))).toThrow(MalformedFrameError);
  });

  it('refuses bytes that are not msgpack, and truncated batches', () => {
    expect(() => decodeBatch(Buffer.from([0xc1]))).toThrow(MalformedFrameError);
    const good = encodeBatch(entries);
    for (let cut = 1; cut < good.length; cut += 7) {
      expect(() => decodeBatch(good.subarray(0, cut))).toThrow(MalformedFrameError);
    }
  });

  it('refuses a huge declared array length without allocating it', () => {
    // array32 header claiming 2^32-1 elements, followed by almost nothing
    expect(() => decodeBatch(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(MalformedFrameError);
  });
});

describe('compareVersions', () => {
  it('orders by wall time, then counter, then node name', () => {
    expect(compareVersions([2, 0, 'a'], [1, 9, 'z'])).toBe(1);
    expect(compareVersions([1, 1, 'a'], [1, 2, 'a'])).toBe(-1);
    expect(compareVersions([1, 1, 'b'], [1, 1, 'a'])).toBe(1);
    expect(compareVersions([1, 1, 'a'], [1, 1, 'a'])).toBe(0);
  });
});

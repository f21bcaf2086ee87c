import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  CODEC_VERSION,
  MAX_ID_BYTES,
  MalformedFrameError,
  NODE_NAME,
  TABLE_NAME,
  decodeBatch,
  decodeSnapshot,
  encodeBatch,
  encodeSnapshot,
  isNodeName,
  isRecordId,
  isTableName,
  type LogEntry,
  type RecordValue,
  type SnapshotRecord,
  type Version,
} from '../src/index.js';
import { fuzzParameters } from '../src/testing/index.js';

/*
 * Property-based fuzzing of the replication codec. Whatever bytes a peer sends, a decoder
 * either returns values of the documented shape that survive a re-encode unchanged, or
 * throws MalformedFrameError: never another error, never a hang.
 *
 * Every property runs with a fixed seed derived from its name, so a run is reproducible;
 * FUZZ_SEED=<int> replaces the seed of every property. On a failure fast-check prints the
 * seed, the path and the shrunk counterexample.
 */

/** A property that runs longer than this fails; it also bounds the shrinking of a failure. */
const PROPERTY_TIME_LIMIT_MS = 20_000;

const fuzz = (numRuns: number) => fuzzParameters(numRuns, PROPERTY_TIME_LIMIT_MS);

/** A msgpack encoder with the codec's settings, to build frames the codec itself would never send. */
const raw = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
/** The same, with msgpackr's extensions for more types (BigInt, Error, RegExp, Set, typed arrays). */
const rawMore = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', moreTypes: true });
/** The same, with structured-clone references: shared and cyclic values on the wire. */
const rawRefs = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: true });

const bytes = (...parts: (Uint8Array | readonly number[])[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p)));

/** A lone UTF-16 surrogate: not Unicode text, and not representable in a msgpack (UTF-8) string. */
const LONE_SURROGATE = /\p{Surrogate}/u;
const isCount = (n: unknown, min = 0): boolean => Number.isSafeInteger(n) && (n as number) >= min;
/** A short picture of any value, for messages (JSON.stringify throws on a BigInt). */
const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : typeof v === 'number' ? String(v) : typeof v);

// ------------------------------------------------------------------ the contract, as an oracle

/**
 * Why `root` is not plain data as JSON.parse builds it (a tree of null, booleans, numbers,
 * well-formed strings, arrays and plain objects), or undefined when it is.
 */
function plainDataProblem(root: unknown): string | undefined {
  const seen = new Set<object>();
  const stack: [unknown, string][] = [[root, '$']];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [v, path] = next;
    if (v === null || typeof v === 'boolean' || typeof v === 'number') continue;
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) return `${path} holds a lone surrogate`;
      continue;
    }
    if (typeof v !== 'object') return `${path} is a ${typeof v}`;
    if (seen.has(v)) return `${path} is a shared or cyclic reference`;
    seen.add(v);
    const proto: unknown = Object.getPrototypeOf(v);
    if (Array.isArray(v) && proto === Array.prototype) {
      for (let i = 0; i < v.length; i++) stack.push([v[i], `${path}[${i}]`]);
    } else if (proto === Object.prototype) {
      for (const [k, child] of Object.entries(v)) {
        if (LONE_SURROGATE.test(k)) return `${path} has a key with a lone surrogate`;
        stack.push([child, `${path}.${k}`]);
      }
    } else {
      return `${path} is a ${(v as { constructor?: { name?: string } }).constructor?.name ?? 'null-prototype object'}`;
    }
  }
  return undefined;
}

function recordValueProblem(value: unknown, id: string): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'the value is not an object';
  if ((value as { id?: unknown }).id !== id) return 'the value id differs from the id';
  return plainDataProblem(value);
}

function versionProblem(v: Version): string | undefined {
  if (!Array.isArray(v) || v.length !== 3) return 'the version is not a triple';
  if (!isCount(v[0]) || !isCount(v[1]) || !isNodeName(v[2])) return `bad version [${v.map(show).join(', ')}]`;
  return undefined;
}

const idProblem = (id: unknown): string | undefined =>
  isRecordId(id) && !LONE_SURROGATE.test(id) ? undefined : `bad id ${show(id)}`;

/** Why a decoded entry breaks the LogEntry contract (types.ts), or undefined. Written from the contract, not the codec. */
function entryProblem(e: LogEntry): string | undefined {
  const keys = Object.keys(e).sort().join(',');
  const want = e.op === 'put' ? 'id,op,origin,originSeq,seq,table,value,version' : 'id,op,origin,originSeq,seq,table,version';
  if (e.op !== 'put' && e.op !== 'delete') return `unknown op ${show(e.op)}`;
  if (keys !== want) return `fields ${keys}`;
  if (!isCount(e.seq)) return `bad seq ${show(e.seq)}`;
  if (!isNodeName(e.origin)) return `bad origin ${show(e.origin)}`;
  if (!isCount(e.originSeq, 1)) return `bad originSeq ${show(e.originSeq)}`;
  if (!isTableName(e.table)) return `bad table ${show(e.table)}`;
  return idProblem(e.id) ?? versionProblem(e.version) ?? (e.op === 'put' ? recordValueProblem(e.value, e.id) : undefined);
}

/** Why a decoded snapshot record breaks the SnapshotRecord contract (types.ts), or undefined. */
function snapshotRecordProblem(r: SnapshotRecord): string | undefined {
  const keys = Object.keys(r).sort().join(',');
  if (keys !== 'id,table,value,version' && keys !== 'id,table,version') return `fields ${keys}`;
  if (!isTableName(r.table)) return `bad table ${show(r.table)}`;
  return idProblem(r.id) ?? versionProblem(r.version) ?? (r.value !== undefined ? recordValueProblem(r.value, r.id) : undefined);
}

// ------------------------------------------------------------------ the decoders under test

interface Decoder<T> {
  readonly name: string;
  readonly decode: (bytes: Uint8Array) => T[];
  readonly encode: (items: readonly T[]) => Buffer;
  readonly problem: (item: T) => string | undefined;
  /** Valid items (built with the validators in names.ts). */
  readonly items: fc.Arbitrary<T[]>;
  /** The msgpack tuple of one item, as the codec lays it out. */
  readonly tuple: (item: T) => unknown[];
  /** The whole frame around already-built tuples. */
  readonly frame: (tuples: readonly unknown[]) => unknown;
  /** Per tuple slot: whether `v` is valid there, given the rest of the (decoded) tuple. */
  readonly slots: readonly { readonly name: string; readonly valid: (v: unknown, t: readonly unknown[]) => boolean }[];
}

/** A decode that takes longer than this on a few KB counts as a hang. */
const SLOW_MS = 2000;

/**
 * Decodes `input`. A MalformedFrameError is a fine answer; any other error fails the
 * property, and so does a result that breaks the contract or changes under a re-encode.
 */
function decodeOrRefuse<T>(d: Decoder<T>, input: Uint8Array): T[] | MalformedFrameError {
  const started = performance.now();
  let out: T[] | MalformedFrameError;
  try {
    out = d.decode(input);
  } catch (err) {
    if (!(err instanceof MalformedFrameError)) {
      throw new Error(`${d.name} threw ${String(err)} instead of MalformedFrameError`, { cause: err });
    }
    expect(err.code).toBe('REPLICA_ERR_FRAME_MALFORMED');
    out = err;
  }
  const ms = performance.now() - started;
  if (ms > SLOW_MS) throw new Error(`${d.name} took ${Math.round(ms)} ms on ${input.length} bytes`);
  if (out instanceof MalformedFrameError) return out;
  for (const [i, item] of out.entries()) {
    const problem = d.problem(item);
    if (problem !== undefined) throw new Error(`${d.name} returned a malformed item ${i}: ${problem}`);
  }
  expect(d.decode(d.encode(out))).toEqual(out);
  return out;
}

function expectRefused<T>(d: Decoder<T>, input: Uint8Array): void {
  const out = decodeOrRefuse(d, input);
  if (!(out instanceof MalformedFrameError)) throw new Error(`${d.name} accepted ${Buffer.from(input).toString('hex').slice(0, 400)}`);
}

// ------------------------------------------------------------------ generators

const tableName = fc.stringMatching(TABLE_NAME).filter(isTableName);
const nodeName = fc.stringMatching(NODE_NAME).filter(isNodeName);
/**
 * Record ids as isRecordId accepts them, in well-formed Unicode: a lone surrogate cannot be
 * written as a msgpack (UTF-8) string, so it cannot round-trip. isRecordId lets one through.
 */
const recordId = fc
  .oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }),
    fc.string({ unit: 'grapheme', minLength: 100, maxLength: MAX_ID_BYTES }),
    fc.constantFrom('a', 'a b/ü?#', '\u0000', '0'.repeat(MAX_ID_BYTES), 'é'.repeat(MAX_ID_BYTES / 2), '😀'.repeat(MAX_ID_BYTES / 4)),
  )
  .filter((s) => isRecordId(s) && !LONE_SURROGATE.test(s));
const count = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const version: fc.Arbitrary<Version> = fc.tuple(count, count, nodeName);
/**
 * Record fields as they arrive over REST: JSON values, normalised through JSON (so -0 is 0).
 * `__proto__` keys are left out: REST refuses them, and msgpackr renames them on decode.
 */
const fields = fc
  .dictionary(fc.string({ unit: 'grapheme', maxLength: 8 }), fc.jsonValue({ maxDepth: 2, stringUnit: 'grapheme' }), { maxKeys: 4 })
  .map((f) => JSON.parse(JSON.stringify(f)) as Record<string, unknown>)
  .filter((f) => !JSON.stringify(f).includes('"__proto__"'));
const valueFor = (id: string, f: Record<string, unknown>): RecordValue => ({ ...f, id });

const logEntry: fc.Arbitrary<LogEntry> = fc
  .record({ seq: count, origin: nodeName, originSeq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), table: tableName, id: recordId, version, put: fc.boolean(), fields })
  .map(({ put, fields: f, ...e }): LogEntry => (put ? { ...e, op: 'put', value: valueFor(e.id, f) } : { ...e, op: 'delete' }));

const snapshotRecord: fc.Arbitrary<SnapshotRecord> = fc
  .record({ table: tableName, id: recordId, version, live: fc.boolean(), fields })
  .map(({ live, fields: f, ...r }): SnapshotRecord => (live ? { ...r, value: valueFor(r.id, f) } : r));

/** Values of every msgpack-encodable kind, and the classic edge cases, for slots that must refuse them. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true }),
  fc.constantFrom<unknown>(
    -1, 0, 1, 2, 0.5, -0.5, Number.NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), 2 ** 64, Number.MAX_VALUE, Number.MIN_VALUE,
    '', '0', '1', 'n1', 't', 'a', ' n1', 'n1\n', '9t', '_t', 'é', 'n'.repeat(65), 'a'.repeat(MAX_ID_BYTES + 1), 'é'.repeat(257),
    true, false, null, undefined, [], {}, [1], [null], { id: 'a' }, { id: 1 }, { id: null },
    new Date(0), new Date(Number.NaN), Buffer.from('n1'), new Uint8Array([1, 2]), new Float64Array([1]), new Set([1]), new Map([[1, 2]]),
    2n ** 70n, -(2n ** 70n), 5n, new Error('boom'), new RangeError('boom'), /re/g,
  ),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.integer(),
  fc.double(),
  fc.array(fc.integer(), { minLength: 9, maxLength: 11 }),
);

/**
 * `v` packed (with msgpackr's extra types), and what the codec's msgpack settings decode
 * it to (`undefined` when they cannot: then the codec must refuse it too). Undefined
 * when msgpackr cannot encode `v` at all.
 */
function wire(v: unknown, packr = rawMore): { bytes: Buffer; seen: { value: unknown } | undefined } | undefined {
  let b: Buffer;
  try {
    b = packr.pack(v);
  } catch {
    return undefined;
  }
  try {
    return { bytes: b, seen: { value: raw.unpack(b) } };
  } catch {
    return { bytes: b, seen: undefined };
  }
}

/** The tuples of a decoded frame (whatever its shape). */
const tuplesOf = <T>(d: Decoder<T>, frame: unknown): unknown[][] =>
  (Array.isArray(frame) ? (d.name === 'decodeBatch' ? frame.slice(1) : frame) : []) as unknown[][];

const isPutValue = (v: unknown, id: unknown): boolean => typeof id === 'string' && recordValueProblem(v, id) === undefined;

const batchDecoder: Decoder<LogEntry> = {
  name: 'decodeBatch',
  decode: decodeBatch,
  encode: encodeBatch,
  problem: entryProblem,
  items: fc.array(logEntry, { maxLength: 12 }),
  tuple: (e) => [e.seq, e.origin, e.originSeq, e.table, e.id, e.version[0], e.version[1], e.version[2], e.op === 'put' ? 0 : 1, e.value ?? null],
  frame: (tuples) => [CODEC_VERSION, ...tuples],
  slots: [
    { name: 'seq', valid: (v) => isCount(v) },
    { name: 'origin', valid: (v) => isNodeName(v) },
    { name: 'originSeq', valid: (v) => isCount(v, 1) },
    { name: 'table', valid: (v) => isTableName(v) },
    { name: 'id', valid: (v, t) => idProblem(v) === undefined && (t[8] === 1 || isPutValue(t[9], v)) },
    { name: 'wallMs', valid: (v) => isCount(v) },
    { name: 'counter', valid: (v) => isCount(v) },
    { name: 'node', valid: (v) => isNodeName(v) },
    { name: 'op', valid: (v, t) => (v === 0 && isPutValue(t[9], t[4])) || (v === 1 && t[9] === null) },
    { name: 'value', valid: (v, t) => (t[8] === 1 ? v === null : isPutValue(v, t[4])) },
  ],
};

const snapshotDecoder: Decoder<SnapshotRecord> = {
  name: 'decodeSnapshot',
  decode: decodeSnapshot,
  encode: encodeSnapshot,
  problem: snapshotRecordProblem,
  items: fc.array(snapshotRecord, { maxLength: 12 }),
  tuple: (r) => [r.table, r.id, r.version[0], r.version[1], r.version[2], r.value ?? null],
  frame: (tuples) => [...tuples],
  slots: [
    { name: 'table', valid: (v) => isTableName(v) },
    { name: 'id', valid: (v, t) => idProblem(v) === undefined && (t[5] === null || isPutValue(t[5], v)) },
    { name: 'wallMs', valid: (v) => isCount(v) },
    { name: 'counter', valid: (v) => isCount(v) },
    { name: 'node', valid: (v) => isNodeName(v) },
    { name: 'value', valid: (v, t) => v === null || isPutValue(v, t[1]) },
  ],
};

/** Bytes that derail a msgpack reader: reserved, extension, and length-prefixed headers. */
const nastyByte = fc.constantFrom(0xc1, 0xc0, 0xd4, 0xd5, 0xc7, 0xc8, 0xc9, 0xdc, 0xdd, 0xde, 0xdf, 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6, 0xff, 0x00, 0x7f, 0x80, 0x90, 0xa0);

/**
 * A msgpack header that declares `length` elements or bytes (up to 2^32-1) followed by far
 * less than that: arrays, maps, strings, binaries and extensions (of every type msgpackr knows).
 */
const lyingHeader: fc.Arbitrary<Buffer> = fc
  .record({
    kind: fc.constantFrom('array16', 'array32', 'map16', 'map32', 'str8', 'str16', 'str32', 'bin8', 'bin16', 'bin32', 'ext8', 'ext16', 'ext32', 'fixext'),
    length: fc.oneof(fc.constant(0xffffffff), fc.constant(0x7fffffff), fc.nat(0xffffffff), fc.nat(64)),
    extType: fc.constantFrom(0x00, 0x42, 0x62, 0x65, 0x69, 0x70, 0x72, 0x73, 0x74, 0x78, 0xff, 0x01, 0x7f),
    body: fc.uint8Array({ maxLength: 24 }),
  })
  .map(({ kind, length, extType, body }) => {
    const n8 = length & 0xff;
    const n16 = [(length >> 8) & 0xff, length & 0xff];
    const n32 = [(length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff];
    const head: Record<typeof kind, number[]> = {
      array16: [0xdc, ...n16],
      array32: [0xdd, ...n32],
      map16: [0xde, ...n16],
      map32: [0xdf, ...n32],
      str8: [0xd9, n8],
      str16: [0xda, ...n16],
      str32: [0xdb, ...n32],
      bin8: [0xc4, n8],
      bin16: [0xc5, ...n16],
      bin32: [0xc6, ...n32],
      ext8: [0xc7, n8, extType],
      ext16: [0xc8, ...n16, extType],
      ext32: [0xc9, ...n32, extType],
      fixext: [0xd4 + (length % 5), extType],
    };
    return bytes(head[kind], body);
  });

/** msgpack string bytes that are not UTF-8: surrogates (CESU-8), overlongs, stray and missing continuation bytes. */
const badUtf8: fc.Arbitrary<Buffer> = fc
  .oneof(
    fc.constantFrom([0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0x80], [0xbf], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfe], [0xff]),
    fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 6 }),
  )
  .chain((core) =>
    fc.tuple(fc.string({ unit: 'binary-ascii', maxLength: 4 }), fc.string({ unit: 'binary-ascii', maxLength: 40 })).map(([pre, post]) => {
      const body = bytes(Buffer.from(pre), core, Buffer.from(post));
      return bytes([0xd9, body.length], body);
    }),
  );

// ------------------------------------------------------------------ the properties

function fuzzDecoder<T>(d: Decoder<T>): void {
  const encoded = d.items.filter((items) => items.length > 0).map((items) => ({ items, bytes: d.encode(items) }));

  it('round-trips valid items exactly, and decodes tuples packed by plain msgpack the same way', () => {
    fc.assert(
      fc.property(d.items, (items) => {
        expect(d.decode(d.encode(items))).toEqual(items);
        expect(d.decode(raw.pack(d.frame(items.map(d.tuple))))).toEqual(items);
      }),
      fuzz(300),
    );
  });

  it('random bytes: MalformedFrameError or a well-formed result', () => {
    const prefix = fc.constantFrom<number[]>([], [0x91, CODEC_VERSION], [0x92, CODEC_VERSION, 0x9a], [0x92, CODEC_VERSION, 0x9a, 0x01, 0xa2, 0x6e, 0x31], [0x91, 0x96], [0x92, 0x96, 0xa1, 0x74]);
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 300 }), (p, tail) => void decodeOrRefuse(d, bytes(p, tail))),
      fuzz(500),
    );
  });

  it('every strict prefix of a valid frame is refused', () => {
    // msgpack is prefix-free: a strict prefix of a value is never a whole value.
    const short = d.items.filter((items) => items.length > 0).map((items) => d.encode(items.slice(0, 2)));
    fc.assert(
      fc.property(short, (b) => {
        for (let cut = 0; cut < b.length; cut++) expectRefused(d, b.subarray(0, cut));
      }),
      fuzz(25),
    );
  });

  it('random cuts (a slice taken out, or a window kept): MalformedFrameError or a well-formed result', () => {
    fc.assert(
      fc.property(encoded, fc.nat(), fc.nat(), fc.boolean(), ({ bytes: b }, x, y, window) => {
        const [from, to] = [x % (b.length + 1), y % (b.length + 1)].sort((m, n) => m - n) as [number, number];
        const cut = window ? b.subarray(from, to) : bytes(b.subarray(0, from), b.subarray(to));
        decodeOrRefuse(d, cut);
      }),
      fuzz(400),
    );
  });

  it('flipped bits and overwritten bytes: MalformedFrameError or a well-formed result', () => {
    const edit = fc.record({ at: fc.nat(), bit: fc.nat(7), byte: fc.option(nastyByte, { nil: undefined }) });
    fc.assert(
      fc.property(encoded, fc.array(edit, { minLength: 1, maxLength: 8 }), ({ bytes: b }, edits) => {
        const mutated = Buffer.from(b);
        for (const e of edits) {
          const at = e.at % mutated.length;
          mutated[at] = e.byte ?? (mutated[at] as number) ^ (1 << e.bit);
        }
        decodeOrRefuse(d, mutated);
      }),
      fuzz(500),
    );
  });

  it('a wrong value in any tuple slot is refused', () => {
    fc.assert(
      fc.property(encoded, fc.nat(), fc.nat(), hostile, fc.boolean(), ({ items }, which, slot, replacement, wrapped) => {
        const tuples = items.map(d.tuple);
        const i = which % tuples.length;
        const k = slot % d.slots.length;
        const t = [...(tuples[i] as unknown[])];
        const valueSlot = k === d.slots.length - 1;
        // In the value slot, also hide the odd value inside an otherwise valid record.
        t[k] = valueSlot && wrapped ? { id: t[d.slots.findIndex((s) => s.name === 'id')], odd: replacement } : replacement;
        tuples[i] = t;
        const w = wire(d.frame(tuples));
        fc.pre(w !== undefined);
        const seen = w.seen === undefined ? undefined : tuplesOf(d, w.seen.value)[i];
        fc.pre(seen === undefined || !(d.slots[k] as Decoder<T>['slots'][number]).valid(seen[k], seen));
        expectRefused(d, w.bytes);
      }),
      fuzz(500),
    );
  });

  it('tuples of the wrong length, and entries that are not tuples, are refused', () => {
    fc.assert(
      fc.property(encoded, fc.nat(), fc.integer({ min: 0, max: 20 }), hostile, fc.boolean(), ({ items }, which, length, filler, notATuple) => {
        const tuples: unknown[] = items.map(d.tuple);
        const i = which % tuples.length;
        const t = tuples[i] as unknown[];
        fc.pre(notATuple || length !== t.length);
        tuples[i] = notATuple ? filler : Array.from({ length }, (_, j) => (j < t.length ? t[j] : filler));
        const w = wire(d.frame(tuples));
        fc.pre(w !== undefined && !(notATuple && w.seen !== undefined && Array.isArray(tuplesOf(d, w.seen.value)[i])));
        expectRefused(d, w.bytes);
      }),
      fuzz(300),
    );
  });

  it('headers that declare up to 2^32-1 elements or bytes, with no body, are refused quickly', () => {
    fc.assert(
      fc.property(fc.constantFrom<number[]>([], [0x91], [0x92, CODEC_VERSION], [0x92, CODEC_VERSION, 0x9a], [0x91, 0x96, 0xa1, 0x74]), lyingHeader, (p, head) => {
        expectRefused(d, bytes(p, head));
      }),
      fuzz(400),
    );
    for (const head of [[0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0xdb, 0xff, 0xff, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xc9, 0xff, 0xff, 0xff, 0xff, 0x42]]) {
      expectRefused(d, bytes(head));
      expectRefused(d, bytes([0x92, CODEC_VERSION], head));
    }
  });

  it('strings that are not UTF-8, in any string slot: MalformedFrameError or a well-formed result', () => {
    fc.assert(
      fc.property(encoded, fc.nat(), fc.nat(), badUtf8, fc.boolean(), ({ items }, which, slot, str, asKey) => {
        const tuples = items.map(d.tuple);
        const i = which % tuples.length;
        const t = tuples[i] as unknown[];
        const stringSlots = t.flatMap((v, k) => (typeof v === 'string' ? [k] : []));
        const k = stringSlots[slot % stringSlots.length] as number;
        // Pack the tuple with a placeholder, then splice the raw string bytes in for it.
        const marker = '\u0001marker\u0001';
        const idSlot = d.slots.findIndex((s) => s.name === 'id');
        const valueSlot = d.slots.length - 1;
        t[k] = marker;
        if (k === idSlot && t[valueSlot] !== null) t[valueSlot] = { ...(t[valueSlot] as object), id: marker };
        if (asKey && t[valueSlot] !== null) t[valueSlot] = { ...(t[valueSlot] as object), [marker]: marker };
        const packed = raw.pack(d.frame(tuples));
        const m = raw.pack(marker);
        const parts: Buffer[] = [];
        let from = 0;
        for (let at = packed.indexOf(m); at !== -1; at = packed.indexOf(m, from)) {
          parts.push(packed.subarray(from, at), str);
          from = at + m.length;
        }
        parts.push(packed.subarray(from));
        decodeOrRefuse(d, Buffer.concat(parts));
      }),
      fuzz(400),
    );
  });

  it('deep nesting: refused at the top; in a record, accepted as deep as a store accepts, else refused or re-encodable', () => {
    const STORE_MAX_DEPTH = 32; // Store.open's default maxDepth: a peer may send records this deep
    // Shallow; around where msgpackr's recursive encoder (~1,400) and decoder overflow; far beyond.
    const depths = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1000, max: 6000 }), fc.integer({ min: 6000, max: 100_000 }));
    fc.assert(
      fc.property(encoded, depths, fc.constantFrom(0x91, 0x81), fc.boolean(), ({ items }, depth, opener, inRecord) => {
        const nest = opener === 0x91 ? Buffer.alloc(depth, 0x91) : Buffer.concat(Array.from({ length: depth }, () => Buffer.from([0x81, 0xa1, 0x6b])));
        if (!inRecord) return void expectRefused(d, bytes(nest, [0xc0]));
        // A put of a valid record whose field `x` holds the nesting: depth + 1 levels in all.
        const tuple = d.tuple(items[0] as T);
        const idSlot = d.slots.findIndex((s) => s.name === 'id');
        const head = tuple.slice(0, -1);
        if (d.name === 'decodeBatch') head[8] = 0;
        const id = raw.pack(tuple[idSlot]);
        const value = bytes([0x82, 0xa2, 0x69, 0x64], id, [0xa1, 0x78], nest, [0xc0]);
        const entry = bytes([0x90 | tuple.length], ...head.map((v) => raw.pack(v)), value);
        const out = decodeOrRefuse(d, d.name === 'decodeBatch' ? bytes([0x92, CODEC_VERSION], entry) : bytes([0x91], entry));
        if (depth + 1 <= STORE_MAX_DEPTH) expect(out).toHaveLength(1);
      }),
      fuzz(150),
    );
  });

  it('shared and cyclic references (structured-clone extensions) are refused', () => {
    fc.assert(
      fc.property(encoded, fc.boolean(), ({ items }, cyclic) => {
        const tuples = items.map(d.tuple);
        const idSlot = d.slots.findIndex((s) => s.name === 'id');
        const t = tuples[0] as unknown[];
        if (d.name === 'decodeBatch') t[8] = 0;
        const shared = { deep: [1, 2] };
        const value: Record<string, unknown> = { id: t[idSlot], a: shared, b: shared };
        if (cyclic) value['self'] = value;
        t[t.length - 1] = value;
        expectRefused(d, rawRefs.pack(d.frame(tuples)));
      }),
      fuzz(100),
    );
  });
}

describe('batch codec under fuzzing', () => {
  fuzzDecoder(batchDecoder);

  it('a frame whose first element is not the codec version is refused', () => {
    fc.assert(
      fc.property(hostile, batchDecoder.items, (version, items) => {
        const w = wire([version, ...items.map(batchDecoder.tuple)]);
        fc.pre(w !== undefined && (w.seen === undefined || (w.seen.value as unknown[])[0] !== CODEC_VERSION));
        expectRefused(batchDecoder, w.bytes);
      }),
      fuzz(300),
    );
    for (const v of [0, 2, 255, -1, 1.5, '1', null, true, [1]]) expectRefused(batchDecoder, raw.pack([v]));
    // A version that is a deeply nested array (the error message must not stringify it).
    for (let depth = 1000; depth <= 6000; depth += 250) expectRefused(batchDecoder, bytes(Buffer.alloc(depth, 0x91), [0xc0]));
  });
});

describe('snapshot codec under fuzzing', () => {
  fuzzDecoder(snapshotDecoder);
});

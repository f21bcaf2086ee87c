import { Packr } from 'msgpackr';
import { MalformedFrameError } from './errors.js';
import { isNodeName, isRecordId, isStoredTableName } from './names.js';
import type { Cursors, LogEntry, RecordValue, SnapshotRecord, Version } from './types.js';

/**
 * The batch codec both transports use: a msgpack array `[CODEC_VERSION, ...entries]`,
 * each entry a flat tuple. Tuples keep batches small and make decoding a strict shape
 * check rather than a trust exercise: anything off is a {@link MalformedFrameError}.
 */
export const CODEC_VERSION = 1;

// structuredClone: false refuses msgpackr's reference extensions, so a decoded value is
// always a tree: no shared or cyclic objects.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: false });

type EntryTuple = [
  seq: number,
  origin: string,
  originSeq: number,
  table: string,
  id: string,
  wallMs: number,
  counter: number,
  node: string,
  op: 0 | 1,
  value: RecordValue | null,
];

/**
 * Each entry's encoding, kept as long as the entry object lives. A store hands every
 * sender the same objects for its recent log, so an entry sent to n peers is encoded once.
 */
const encoded = new WeakMap<LogEntry, Buffer>();

function encodeEntry(e: LogEntry): Buffer {
  let b = encoded.get(e);
  if (b === undefined) {
    const t: EntryTuple = [e.seq, e.origin, e.originSeq, e.table, e.id, e.version[0], e.version[1], e.version[2], e.op === 'put' ? 0 : 1, e.value ?? null];
    b = packr.pack(t);
    encoded.set(e, b);
  }
  return b;
}

/** msgpack array header for `n` elements. */
function arrayHeader(n: number): Buffer {
  if (n < 16) return Buffer.from([0x90 | n]);
  if (n < 0x10000) return Buffer.from([0xdc, n >> 8, n & 0xff]);
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Encodes a batch: the msgpack array `[CODEC_VERSION, ...entry tuples]`. */
export function encodeBatch(entries: readonly LogEntry[]): Buffer {
  const parts: Buffer[] = [arrayHeader(entries.length + 1), VERSION_BYTE];
  for (const e of entries) parts.push(encodeEntry(e));
  return Buffer.concat(parts);
}

const VERSION_BYTE = Buffer.from([CODEC_VERSION]); // a positive fixint

const isSeq = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/**
 * Deepest nesting of arrays and objects a record value may have on the wire (the record
 * itself is level 1). Stores refuse more than 32 levels by default; msgpackr's recursive
 * encoder (used to forward and to store a record) overflows the stack at about 1,400.
 */
const MAX_VALUE_DEPTH = 256;

/**
 * Whether `root` is plain data as JSON.parse builds it, nested at most
 * {@link MAX_VALUE_DEPTH} levels: null, booleans, numbers, strings, arrays and plain
 * objects. msgpackr also decodes extensions (dates, sets, bigints, errors, typed arrays,
 * `undefined`, binaries, its 0xc1 marker object): none of them is a record field, and some
 * can be neither stored, nor served as JSON, nor re-encoded. Iterative, so nesting cannot
 * overflow the stack; it terminates because decoded values are trees (see `structuredClone`
 * above). (msgpackr decodes invalid UTF-8 to U+FFFD, so strings are well-formed.)
 */
function isPlainData(root: unknown): boolean {
  const values: unknown[] = [root];
  const depths: number[] = [0];
  while (values.length > 0) {
    const v = values.pop();
    const depth = depths.pop() as number;
    switch (typeof v) {
      case 'string':
      case 'number':
      case 'boolean':
        break;
      case 'object': {
        if (v === null) break;
        if (depth >= MAX_VALUE_DEPTH) return false;
        const proto: unknown = Object.getPrototypeOf(v);
        if (proto === Array.prototype) {
          for (const child of v as unknown[]) {
            values.push(child);
            depths.push(depth + 1);
          }
        } else if (proto === Object.prototype) {
          for (const k in v) {
            values.push((v as Record<string, unknown>)[k]);
            depths.push(depth + 1);
          }
        } else {
          return false;
        }
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

/** Whether `v` can be the value of a put of record `id`: a plain-data object whose `id` is `id`. */
const isRecordValueOf = (v: unknown, id: string): v is RecordValue =>
  v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype && (v as { id?: unknown }).id === id && isPlainData(v);

/** msgpack-decodes `buf`; anything that is not msgpack is a {@link MalformedFrameError}. */
function unpackFrame(buf: Uint8Array, what: string): unknown {
  try {
    return packr.unpack(buf);
  } catch (cause) {
    throw new MalformedFrameError(`${what} is not valid msgpack`, { cause });
  }
}

/** Decodes and validates a batch. Throws {@link MalformedFrameError} on anything unexpected. */
export function decodeBatch(buf: Uint8Array): LogEntry[] {
  const raw = unpackFrame(buf, 'batch');
  if (!Array.isArray(raw) || raw.length === 0) throw new MalformedFrameError('not a batch array');
  if (raw[0] !== CODEC_VERSION) {
    // Never String(raw[0]): it may be a huge or deeply nested array.
    throw new MalformedFrameError(`unknown codec version ${typeof raw[0] === 'number' ? raw[0] : typeof raw[0]}`);
  }
  const entries: LogEntry[] = [];
  for (let i = 1; i < raw.length; i++) entries.push(decodeEntry(raw[i], i - 1));
  return entries;
}

function decodeEntry(t: unknown, index: number): LogEntry {
  const bad = (what: string): never => {
    throw new MalformedFrameError(`entry ${index}: ${what}`);
  };
  if (!Array.isArray(t) || t.length !== 10) return bad('not a 10-field tuple');
  const [seq, origin, originSeq, table, id, wallMs, counter, node, op, value] = t as unknown[];
  if (!isSeq(seq)) bad('seq is not a non-negative integer');
  if (!isNodeName(origin)) bad('origin is not a node name');
  if (!isSeq(originSeq) || originSeq === 0) bad('originSeq is not a positive integer');
  if (!isStoredTableName(table)) bad('table is not a table name');
  if (!isRecordId(id)) bad('id is not a valid record id');
  if (!isSeq(wallMs) || !isSeq(counter) || !isNodeName(node)) bad('version is malformed');
  if (op !== 0 && op !== 1) bad('op is neither put nor delete');
  const version: Version = [wallMs as number, counter as number, node as string];
  const base = {
    seq: seq as number,
    origin: origin as string,
    originSeq: originSeq as number,
    table: table as string,
    id: id as string,
    version,
  };
  if (op === 1) {
    if (value !== null) bad('delete carries a value');
    return { ...base, op: 'delete' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) bad('put value is not an object');
  if ((value as { id?: unknown }).id !== id) bad('put value id does not match the entry id');
  if (!isRecordValueOf(value, id as string)) bad(`put value is not plain JSON data nested at most ${MAX_VALUE_DEPTH} levels`);
  return { ...base, op: 'put', value: value as RecordValue };
}

type SnapshotTuple = [table: string, id: string, wallMs: number, counter: number, node: string, value: RecordValue | null];

/** Encodes records of a snapshot (a merge resync): a msgpack array of 6-tuples. */
export function encodeSnapshot(records: readonly SnapshotRecord[]): Buffer {
  const tuples: SnapshotTuple[] = records.map((r) => [r.table, r.id, r.version[0], r.version[1], r.version[2], r.value ?? null]);
  return packr.pack(tuples);
}

/** Decodes and validates snapshot records; anything off is a {@link MalformedFrameError}. */
export function decodeSnapshot(payload: Uint8Array): SnapshotRecord[] {
  const raw = unpackFrame(payload, 'snapshot frame');
  if (!Array.isArray(raw)) throw new MalformedFrameError('snapshot frame is not an array');
  return raw.map((t: unknown, i) => {
    if (!Array.isArray(t) || t.length !== 6) throw new MalformedFrameError(`snapshot record ${i} is not a 6-tuple`);
    const [table, id, wall, counter, node, value] = t as unknown[];
    if (!isStoredTableName(table) || !isRecordId(id)) throw new MalformedFrameError(`snapshot record ${i}: bad table or id`);
    if (!isSeq(wall) || !isSeq(counter) || !isNodeName(node)) throw new MalformedFrameError(`snapshot record ${i}: bad version`);
    const version = [wall, counter, node] as const;
    if (value === null) return { table, id, version };
    if (!isRecordValueOf(value, id)) throw new MalformedFrameError(`snapshot record ${i}: bad value`);
    return { table, id, version, value };
  });
}

/**
 * Checks that `v` is a cursor map (node name → non-negative safe integer) and returns it
 * as {@link Cursors}; anything else is a {@link MalformedFrameError}. Every cursor map a
 * peer sends goes through here before it reaches a store.
 */
export function toCursors(v: unknown): Cursors {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MalformedFrameError('cursors are not a map');
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    if (!isNodeName(k) || !isSeq(n)) throw new MalformedFrameError(`bad cursor ${k.length > 64 ? `${k.slice(0, 64)}…` : k}`);
    out[k] = n;
  }
  return out;
}

/** Encodes a cursor map (msgpack). */
export function encodeCursors(cursors: Cursors): Buffer {
  return packr.pack(cursors);
}

/** Decodes and validates a cursor map; anything off is a {@link MalformedFrameError}. */
export function decodeCursors(payload: Uint8Array): Cursors {
  return toCursors(unpackFrame(payload, 'cursors'));
}

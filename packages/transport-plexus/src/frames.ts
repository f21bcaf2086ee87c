import { Packr } from 'msgpackr';
import {
  FrameTooLargeError,
  MalformedFrameError,
  isNodeName,
  toCursors,
  type Cursors,
  decodeSnapshot,
  encodeSnapshot,
  type SnapshotRecord,
} from '@replica/transport-api';

/**
 * Plexus wire format: every frame is `[u32 length][u8 type][payload]`, where length
 * counts the type byte and the payload. Batches carry the shared batch codec's bytes;
 * control frames are small msgpack maps or one float64.
 */
export const Frame = {
  /** msgpack `{ protocol, node, cursors }`: first frame on each side. */
  hello: 1,
  /** msgpack `{ cursors, exclude, recoverUntil }`: what the receiver wants streamed. */
  subscribe: 2,
  /** float64 last sender seq covered + shared batch codec bytes. */
  batch: 3,
  /** float64 sender seq applied through (cumulative). */
  ack: 4,
  /** float64 sender wall clock. */
  ping: 5,
  pong: 6,
  /** msgpack `{ cursors }`: a merge resync follows. */
  resyncBegin: 7,
  /** msgpack array of snapshot record tuples. */
  snapshot: 8,
  /** msgpack `{ cursors }`: the snapshot is complete. */
  resyncEnd: 9,
} as const;
export type FrameType = (typeof Frame)[keyof typeof Frame];

export const PROTOCOL = 1;
const HEADER = 5;
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export function encodeFrame(type: FrameType, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32BE(payload.length + 1, 0);
  out[4] = type;
  out.set(payload, HEADER);
  return out;
}

export function encodeNumberFrame(type: FrameType, n: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER + 8);
  out.writeUInt32BE(9, 0);
  out[4] = type;
  out.writeDoubleBE(n, HEADER);
  return out;
}

export function encodeBatchFrame(lastSeq: number, batch: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + 8 + batch.length);
  out.writeUInt32BE(9 + batch.length, 0);
  out[4] = Frame.batch;
  out.writeDoubleBE(lastSeq, HEADER);
  out.set(batch, HEADER + 8);
  return out;
}

export function encodeControl(type: FrameType, message: unknown): Buffer {
  return encodeFrame(type, packr.pack(message));
}

export interface RawFrame {
  readonly type: number;
  readonly payload: Buffer;
}

/**
 * Splits a byte stream into frames. Refuses a declared length above `maxFrameBytes`
 * before buffering it ({@link FrameTooLargeError}) and an unknown type or empty frame
 * ({@link MalformedFrameError}).
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): RawFrame[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const frames: RawFrame[] = [];
    while (this.#buffered >= 4) {
      const head = this.#peek(4);
      const length = head.readUInt32BE(0);
      if (length === 0) throw new MalformedFrameError('empty frame');
      if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
      if (this.#buffered < 4 + length) break;
      const frame = this.#take(4 + length);
      const type = frame[4] as number;
      if (type < Frame.hello || type > Frame.resyncEnd) throw new MalformedFrameError(`unknown frame type ${type}`);
      frames.push({ type, payload: frame.subarray(HEADER) });
    }
    return frames;
  }

  #peek(n: number): Buffer {
    if ((this.#chunks[0] as Buffer).length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] as Buffer;
  }

  #take(n: number): Buffer {
    const first = this.#peek(n);
    this.#buffered -= n;
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    this.#chunks[0] = first.subarray(n);
    return first.subarray(0, n);
  }
}

export function readNumber(payload: Buffer): number {
  if (payload.length !== 8) throw new MalformedFrameError('number frame is not 8 bytes');
  return payload.readDoubleBE(0);
}

export function splitBatchFrame(payload: Buffer): { lastSeq: number; batch: Buffer } {
  if (payload.length < 9) throw new MalformedFrameError('batch frame too short');
  const lastSeq = payload.readDoubleBE(0);
  if (!Number.isSafeInteger(lastSeq) || lastSeq < 0) throw new MalformedFrameError('batch frame seq is not a sequence number');
  return { lastSeq, batch: payload.subarray(8) };
}

function unpack(payload: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = packr.unpack(payload);
  } catch (cause) {
    throw new MalformedFrameError('control frame is not msgpack', { cause });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MalformedFrameError('control frame is not a map');
  return v as Record<string, unknown>;
}

export interface Hello {
  readonly protocol: number;
  readonly node: string;
  readonly cursors: Cursors;
}

export function decodeHello(payload: Buffer): Hello {
  const m = unpack(payload);
  if (m['protocol'] !== PROTOCOL) throw new MalformedFrameError(`unsupported protocol ${String(m['protocol'])}`);
  if (!isNodeName(m['node'])) throw new MalformedFrameError('hello without a node name');
  return { protocol: PROTOCOL, node: m['node'], cursors: toCursors(m['cursors']) };
}

/**
 * What a receiver asks a sender to stream: every origin not in `exclude`, after the
 * receiver's `cursors`; and of the receiver's own origin only (cursor, recoverUntil],
 * which is non-empty only when the receiver lost writes the sender still holds.
 */
export interface Subscription {
  readonly cursors: Cursors;
  readonly exclude: readonly string[];
  readonly recoverUntil: number;
}

export function decodeSubscription(payload: Buffer): Subscription {
  const m = unpack(payload);
  const exclude = m['exclude'];
  if (!Array.isArray(exclude) || !exclude.every(isNodeName)) throw new MalformedFrameError('subscription exclude is not a list of node names');
  const recoverUntil = m['recoverUntil'];
  if (!Number.isSafeInteger(recoverUntil) || (recoverUntil as number) < 0) throw new MalformedFrameError('bad recoverUntil');
  return { cursors: toCursors(m['cursors']), exclude, recoverUntil: recoverUntil as number };
}

export function decodeCursorsMessage(payload: Buffer): Cursors {
  return toCursors(unpack(payload)['cursors']);
}

export function encodeSnapshotFrame(records: readonly SnapshotRecord[]): Buffer {
  return encodeFrame(Frame.snapshot, encodeSnapshot(records));
}

export function decodeSnapshotFrame(payload: Buffer): SnapshotRecord[] {
  return decodeSnapshot(payload);
}

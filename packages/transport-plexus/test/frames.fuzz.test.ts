import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { FrameTooLargeError, MalformedFrameError, NODE_NAME, isNodeName } from '@replica/transport-api';
import {
  Frame,
  FrameDecoder,
  PROTOCOL,
  decodeCursorsMessage,
  decodeHello,
  decodeSnapshotFrame,
  decodeSubscription,
  encodeBatchFrame,
  encodeControl,
  encodeFrame,
  encodeNumberFrame,
  readNumber,
  splitBatchFrame,
  type FrameType,
  type RawFrame,
} from '../src/frames.js';
import { fuzzParameters } from '@replica/transport-api/testing';

/*
 * Property-based fuzzing of the plexus wire format: the stream splitter (FrameDecoder) and
 * the payload decoders. A TCP stream arrives in arbitrary pieces, so the frames must not
 * depend on where it is cut; a hostile or broken peer gets a FrameTooLargeError or a
 * MalformedFrameError (and its connection closed by the transport), never another error.
 *
 * Every property runs with a fixed seed derived from its name; FUZZ_SEED=<int> replaces it.
 * On a failure fast-check prints the seed, the path and the shrunk counterexample.
 */

const fuzz = (numRuns: number) => fuzzParameters(numRuns, 20000);

const TYPES = Object.values(Frame) as FrameType[];
const raw = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', moreTypes: true });

/** One frame as the transport sends it, with what the decoder must hand back for it. */
interface SentFrame {
  readonly type: FrameType;
  readonly payload: Buffer;
  readonly bytes: Buffer;
}

const sent = (bytes: Buffer): SentFrame => ({ type: bytes[4] as FrameType, payload: bytes.subarray(5), bytes });

const nodeName = fc.stringMatching(NODE_NAME).filter(isNodeName);
const cursors = fc.dictionary(nodeName, fc.maxSafeNat(), { maxKeys: 5 });

/** Every kind of frame the transport writes: raw, number, batch and control frames. */
const frame: fc.Arbitrary<SentFrame> = fc.oneof(
  fc.tuple(fc.constantFrom(...TYPES), fc.uint8Array({ maxLength: 300 })).map(([type, payload]) => sent(encodeFrame(type, payload))),
  fc.tuple(fc.constantFrom(Frame.ack, Frame.ping, Frame.pong), fc.double()).map(([type, n]) => sent(encodeNumberFrame(type, n))),
  fc.tuple(fc.maxSafeNat(), fc.uint8Array({ minLength: 1, maxLength: 2000 })).map(([seq, batch]) => sent(encodeBatchFrame(seq, batch))),
  fc.record({ node: nodeName, cursors }).map((h) => sent(encodeControl(Frame.hello, { protocol: PROTOCOL, ...h }))),
);

/** Where to cut a stream of `length` bytes: sorted offsets, repeats allowed (empty chunks). */
const cuts = fc.oneof(
  fc.array(fc.nat(), { maxLength: 40 }),
  fc.constant('every byte' as const),
);

function chunk(stream: Buffer, at: readonly number[] | 'every byte'): Buffer[] {
  if (at === 'every byte') return Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
  const offsets = at.map((n) => n % (stream.length + 1)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const to of offsets) {
    out.push(stream.subarray(from, to));
    from = to;
  }
  out.push(stream.subarray(from));
  return out;
}

/** What a decoder made of a stream fed in `chunks`: frames, the error that ended it, bytes left over. */
interface Outcome {
  readonly frames: string[];
  readonly error: 'FrameTooLargeError' | 'MalformedFrameError' | undefined;
  readonly buffered: number;
}

/** A short, comparable picture of a frame. */
const show = (f: RawFrame | SentFrame): string => `${f.type}:${Buffer.from(f.payload).toString('hex')}`;

function feed(maxFrameBytes: number, chunks: readonly Buffer[]): Outcome {
  const decoder = new FrameDecoder(maxFrameBytes);
  const frames: string[] = [];
  let pushed = 0;
  let consumed = 0;
  for (const c of chunks) {
    pushed += c.length;
    let got: RawFrame[];
    try {
      got = decoder.push(c);
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        expect(err.size).toBeGreaterThan(maxFrameBytes);
        expect(err.limit).toBe(maxFrameBytes);
        return { frames, error: 'FrameTooLargeError', buffered: decoder.buffered };
      }
      if (err instanceof MalformedFrameError) return { frames, error: 'MalformedFrameError', buffered: decoder.buffered };
      throw new Error(`FrameDecoder threw ${String(err)}`, { cause: err });
    }
    for (const f of got) {
      expect(TYPES).toContain(f.type);
      expect(f.payload.length + 1).toBeLessThanOrEqual(maxFrameBytes);
      consumed += 5 + f.payload.length;
      frames.push(show(f));
    }
    // Nothing is lost or invented: every byte pushed is in a frame returned or still buffered.
    expect(decoder.buffered).toBe(pushed - consumed);
  }
  return { frames, error: undefined, buffered: decoder.buffered };
}

describe('plexus FrameDecoder under fuzzing', () => {
  it('a stream of valid frames cut anywhere yields the same frames, in order, with nothing left over', () => {
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 20 }), cuts, (frames, at) => {
        const stream = Buffer.concat(frames.map((f) => f.bytes));
        const max = Math.max(...frames.map((f) => f.bytes.length - 4));
        const out = feed(max, chunk(stream, at));
        expect(out).toEqual({ frames: frames.map(show), error: undefined, buffered: 0 });
      }),
      fuzz(400),
    );
  });

  it('returned payloads stay intact while later chunks arrive', () => {
    fc.assert(
      fc.property(fc.array(frame, { minLength: 2, maxLength: 10 }), cuts, (frames, at) => {
        const decoder = new FrameDecoder(1 << 20);
        const got: RawFrame[] = [];
        // Fresh copies, so a decoder that kept a reference to a chunk and reused it would show.
        for (const c of chunk(Buffer.concat(frames.map((f) => f.bytes)), at)) got.push(...decoder.push(Buffer.from(c)));
        expect(got.map(show)).toEqual(frames.map(show));
      }),
      fuzz(200),
    );
  });

  it('a declared length above the limit is refused as soon as the 4 length bytes are in, before the body', () => {
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 5 }),
        fc.integer({ min: 16, max: 1 << 20 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 64 }),
        cuts,
        (before, extra, over, tail, at) => {
          const max = Math.max(extra, ...before.map((f) => f.bytes.length - 4));
          const declared = max + 1 + (over % (0xffffffff - max));
          const head = Buffer.alloc(4);
          head.writeUInt32BE(declared, 0);
          const prefix = Buffer.concat(before.map((f) => f.bytes));
          const stream = Buffer.concat([prefix, head, Buffer.from(tail)]);
          const chunks = chunk(stream, at);
          const out = feed(max, chunks);
          expect(out.error).toBe('FrameTooLargeError');
          expect(before.map(show).slice(0, out.frames.length)).toEqual(out.frames);
          // Refused by the push that completed the length, with none of the body buffered.
          let pushes = 0;
          for (let n = 0; n < prefix.length + 4; pushes++) n += (chunks[pushes] as Buffer).length;
          expect(feed(max, chunks.slice(0, pushes)).error).toBe('FrameTooLargeError');
          expect(feed(max, chunks.slice(0, pushes - 1)).error).toBeUndefined();
        },
      ),
      fuzz(300),
    );
    for (const declared of [0xffffffff, 0x80000000, 2 ** 31 - 1]) {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(declared, 0);
      expect(() => new FrameDecoder(32 * 1024 * 1024).push(head)).toThrow(FrameTooLargeError);
    }
  });

  it('an empty frame or an unknown frame type is a MalformedFrameError', () => {
    const unknownType = fc.oneof(fc.constant(0), fc.integer({ min: 10, max: 255 }));
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 5 }), fc.oneof(fc.constant(undefined), unknownType), fc.uint8Array({ maxLength: 64 }), cuts, (before, type, payload, at) => {
        const bad = type === undefined ? Buffer.alloc(4) : encodeFrame(type as FrameType, payload);
        const stream = Buffer.concat([...before.map((f) => f.bytes), bad]);
        const out = feed(1 << 20, chunk(stream, at));
        expect(out.error).toBe('MalformedFrameError');
        expect(before.map(show).slice(0, out.frames.length)).toEqual(out.frames);
      }),
      fuzz(300),
    );
  });

  it('random bytes: frames or a clear error, and the same answer however the stream is cut', () => {
    const junk = fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      // Mostly-valid streams: good frames around random bytes.
      fc.tuple(fc.array(frame, { maxLength: 4 }), fc.uint8Array({ maxLength: 40 }), fc.array(frame, { maxLength: 4 })).map(([a, mid, b]) =>
        Buffer.concat([...a.map((f) => f.bytes), Buffer.from(mid), ...b.map((f) => f.bytes)]),
      ),
    );
    fc.assert(
      fc.property(junk, fc.integer({ min: 1, max: 4096 }), cuts, (bytes, max, at) => {
        const stream = Buffer.from(bytes);
        const oneByOne = feed(max, chunk(stream, 'every byte'));
        const cut = feed(max, chunk(stream, at));
        expect(cut.error).toBe(oneByOne.error);
        // A push that ends in an error drops the frames it completed along with the
        // connection, so a coarser cut may return fewer of them, never different ones.
        expect(oneByOne.frames.slice(0, cut.frames.length)).toEqual(cut.frames);
        if (cut.error === undefined) expect(cut).toEqual(oneByOne);
      }),
      fuzz(400),
    );
  });
});

describe('plexus payload decoders under fuzzing', () => {
  const hostile = fc.oneof(
    fc.anything({ maxDepth: 3, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true }),
    fc.record({ protocol: fc.oneof(fc.constant(PROTOCOL), fc.anything()), node: fc.oneof(nodeName, fc.anything()), cursors: fc.oneof(cursors, fc.anything(), fc.dictionary(fc.string(), fc.anything())) }, { requiredKeys: [] }),
    fc.record({ cursors: fc.oneof(cursors, fc.anything()), exclude: fc.oneof(fc.array(nodeName), fc.anything()), recoverUntil: fc.oneof(fc.maxSafeNat(), fc.anything()) }, { requiredKeys: [] }),
  );
  const payload = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    hostile.map((v) => {
      try {
        return raw.pack(v);
      } catch {
        return Buffer.alloc(0);
      }
    }),
  );

  const decoders: [string, (p: Buffer) => unknown][] = [
    ['decodeHello', decodeHello],
    ['decodeSubscription', decodeSubscription],
    ['decodeCursorsMessage', decodeCursorsMessage],
    ['readNumber', readNumber],
    ['splitBatchFrame', splitBatchFrame],
    ['decodeSnapshotFrame', decodeSnapshotFrame],
  ];

  it.each(decoders)('%s returns or throws MalformedFrameError, nothing else', (name, decode) => {
    fc.assert(
      fc.property(payload, (p) => {
        try {
          decode(p);
        } catch (err) {
          if (!(err instanceof MalformedFrameError)) throw new Error(`${name} threw ${String(err)}`, { cause: err });
        }
      }),
      fuzz(400),
    );
  });

  const isCursors = (c: unknown): boolean =>
    c !== null && typeof c === 'object' && Object.entries(c).every(([k, n]) => isNodeName(k) && Number.isSafeInteger(n) && (n as number) >= 0);

  it('control messages round-trip, and what the decoders accept is well-formed', () => {
    fc.assert(
      fc.property(nodeName, cursors, fc.array(nodeName, { maxLength: 4 }), fc.maxSafeNat(), payload, (node, c, exclude, recoverUntil, junk) => {
        const body = (f: Buffer) => f.subarray(5);
        expect(decodeHello(body(encodeControl(Frame.hello, { protocol: PROTOCOL, node, cursors: c })))).toEqual({ protocol: PROTOCOL, node, cursors: c });
        expect(decodeSubscription(body(encodeControl(Frame.subscribe, { cursors: c, exclude, recoverUntil })))).toEqual({ cursors: c, exclude, recoverUntil });
        expect(decodeCursorsMessage(body(encodeControl(Frame.resyncBegin, { cursors: c })))).toEqual(c);
        const accepted = (f: () => unknown): unknown => {
          try {
            return f();
          } catch {
            return undefined;
          }
        };
        const h = accepted(() => decodeHello(junk)) as { node: unknown; cursors: unknown } | undefined;
        if (h !== undefined) expect(isNodeName(h.node) && isCursors(h.cursors)).toBe(true);
        const s = accepted(() => decodeSubscription(junk)) as { exclude: unknown[]; cursors: unknown; recoverUntil: unknown } | undefined;
        if (s !== undefined) expect(s.exclude.every(isNodeName) && isCursors(s.cursors) && Number.isSafeInteger(s.recoverUntil)).toBe(true);
        const b = accepted(() => splitBatchFrame(junk)) as { lastSeq: number } | undefined;
        if (b !== undefined) expect(Number.isSafeInteger(b.lastSeq) && b.lastSeq >= 0).toBe(true);
      }),
      fuzz(300),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { breakdownOf, classifyProfile, COMPONENTS, readThreads, threadDelta, type CpuProfile } from '../src/explain.js';

/** A profile whose samples are the given leaf ids, 1 ms apart from t = 1,000,000 µs. */
function profile(tree: { id: number; fn: string; url: string; children?: number[] }[], samples: number[]): CpuProfile {
  return { nodes: tree.map((n) => ({ id: n.id, callFrame: { functionName: n.fn, url: n.url }, ...(n.children ? { children: n.children } : {}) })), startTime: 1_000_000, samples, timeDeltas: samples.map(() => 1000) };
}

const TREE = [
  { id: 1, fn: '(root)', url: '', children: [2, 3, 4, 5, 6, 20] },
  { id: 2, fn: '(idle)', url: '' },
  { id: 3, fn: '(garbage collector)', url: '' },
  { id: 4, fn: '(program)', url: '' },
  // an HTTP request whose handler commits to the store, which wakes the sender, which packs with msgpackr
  { id: 5, fn: 'onRequest', url: 'file:///r/node_modules/.pnpm/fastify@5/node_modules/fastify/lib/route.js', children: [7] },
  { id: 7, fn: 'post', url: 'file:///r/apps/node/dist/app.js', children: [8, 10] },
  { id: 8, fn: 'put', url: 'file:///r/packages/storage/dist/store.js', children: [9] },
  { id: 9, fn: 'pack', url: 'file:///r/node_modules/.pnpm/msgpackr@1/node_modules/msgpackr/pack.js' },
  { id: 10, fn: 'wake', url: 'file:///r/packages/transport-plexus/dist/sender.js', children: [11] },
  { id: 11, fn: 'pack', url: 'file:///r/node_modules/.pnpm/msgpackr@1/node_modules/msgpackr/pack.js' },
  // data from a peer: session → frames → receiver → storage; and a frame decoded with no direction known
  { id: 6, fn: 'onData', url: 'file:///r/packages/transport-plexus/dist/session.js', children: [12, 14] },
  { id: 12, fn: 'apply', url: 'file:///r/packages/transport-plexus/dist/receiver.js', children: [13] },
  { id: 13, fn: 'applyRemote', url: 'file:///r/packages/storage/dist/store.js' },
  { id: 14, fn: 'decode', url: 'file:///r/packages/transport-plexus/dist/frames.js' },
  { id: 20, fn: 'emit', url: 'node:events', children: [21, 22] },
  { id: 21, fn: 'tick', url: 'file:///r/packages/transport-plexus/dist/link.js' },
  { id: 22, fn: 'write', url: 'node:_tls_wrap' },
];

describe('--explain: classifying samples', () => {
  it('gives each sample to the innermost frame that says what the work is for, within the window only', () => {
    const p = profile(TREE, [2, 2, 3, 4, 9, 11, 11, 13, 14, 21, 22, 7, 5]);
    expect(classifyProfile(p, 0, Number.MAX_SAFE_INTEGER)).toEqual({
      idle: 2,
      gc: 1,
      nativeIo: 1,
      store: 2, // msgpackr under storage is the store's, and so is a receiver's applyRemote
      transportSend: 2, // msgpackr under the sender is the sender's, though the request started it
      transportReceive: 1, // session.ts is the receiving side, so the frame decode under it is too
      transportShared: 1, // link code with no direction above it
      tls: 1,
      http: 2,
    });
    // samples at 1,001,000 … 1,013,000 µs: a window of the 5th to the 7th
    expect(classifyProfile(p, 1_005_000, 1_007_000)).toEqual({ store: 1, transportSend: 2 });
  });
});

describe('--explain: threads and totals', () => {
  it('reads this process’s threads from /proc: the main one, with CPU and a start tick', () => {
    const ts = readThreads(process.pid);
    expect(ts.filter((t) => t.main)).toHaveLength(1);
    expect(ts.every((t) => t.cpuSec >= 0 && t.startTick > 0)).toBe(true);
  });

  it('splits thread CPU into main, profiler, V8 platform threads (the first started) and the rest', () => {
    const t = (tid: number, cpuSec: number, startTick: number, o: { main?: boolean; profiler?: boolean } = {}) => ({ tid, cpuSec, startTick, main: o.main ?? false, profiler: o.profiler ?? false });
    const before = [t(1, 10, 100, { main: true }), t(2, 1, 102), t(3, 1, 102), t(9, 0, 105, { profiler: true }), t(5, 0.5, 108)];
    const after = [t(1, 12, 100, { main: true }), t(2, 1.2, 102), t(3, 1.3, 102), t(9, 0.25, 105, { profiler: true }), t(5, 0.6, 108), t(6, 0.05, 130)];
    const d = threadDelta(before, after);
    expect(d.main).toBeCloseTo(2);
    expect(d.v8).toBeCloseTo(0.5);
    expect(d.profiler).toBeCloseTo(0.25);
    expect(d.pool).toBeCloseTo(0.15); // a thread started during the round counts whole
  });

  it('splits the main thread by its busy samples and adds the threads and brokers, in ms per write', () => {
    const b = breakdownOf(
      [
        { threads: { main: 2, profiler: 0.1, v8: 0.4, pool: 0.2 }, samples: { idle: 50, http: 30, store: 10 } },
        { threads: { main: 1, profiler: 0.1, v8: 0.2, pool: 0 }, samples: {} }, // no samples: all "other"
      ],
      0.5,
      1000,
      4.5,
    );
    expect(b.msPerWrite).toMatchObject({ http: 1.5, store: 0.5, otherMain: 1, v8Threads: 0.6, poolThreads: 0.2, profiler: 0.2, broker: 0.5 });
    expect(Object.keys(b.msPerWrite)).toEqual([...COMPONENTS]);
    expect(b.sum).toBeCloseTo(4.5);
    expect(b.total).toBe(4.5);
  });
});

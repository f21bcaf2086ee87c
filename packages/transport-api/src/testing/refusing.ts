import { StorageFullError } from '../errors.js';
import type { LocalNode } from '../types.js';

/**
 * A store as a transport sees it, which can be made to refuse replicated writes the way a
 * store on a full disk does (`StorageFullError` from `applyRemote`, `mergeSnapshot` and
 * `adoptCursors`; `whenWritable` resolving once it takes them again). Everything else
 * goes to the store unchanged.
 */
export interface RefusingNode {
  /** What to start the transport with. */
  readonly node: LocalNode;
  /** Writes refused so far. */
  readonly refused: number;
  /** Refuses replicated writes from now on; the returned function takes them again. */
  refuse(): () => void;
}

export function refusingNode(store: LocalNode): RefusingNode {
  let refusing = false;
  let refused = 0;
  let waiters: (() => void)[] = [];
  const check = () => {
    if (!refusing) return;
    refused++;
    throw new StorageFullError('noSpace', 0, 0);
  };
  const whenWritable = (signal?: AbortSignal): Promise<void> => {
    if (!refusing) return store.whenWritable?.(signal) ?? Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const abort = () => reject(signal?.reason);
      signal?.addEventListener('abort', abort, { once: true });
      waiters.push(() => {
        signal?.removeEventListener('abort', abort);
        resolve();
      });
    });
  };
  // Bound calls, not a prototype: a store's methods use its private fields.
  const node: LocalNode = {
    name: store.name,
    lastSeq: () => store.lastSeq(),
    readLog: (from, limit) => store.readLog(from, limit),
    seqOf: (origin, originSeq) => store.seqOf(origin, originSeq),
    logStart: (cursors) => store.logStart(cursors),
    cursors: () => store.cursors(),
    onCommit: (listener) => store.onCommit(listener),
    snapshot: (batchSize) => store.snapshot(batchSize),
    applyRemote: async (entries) => (check(), store.applyRemote(entries)),
    mergeSnapshot: async (records) => (check(), store.mergeSnapshot(records)),
    adoptCursors: async (cursors) => (check(), store.adoptCursors(cursors)),
    ...(store.retainLog ? { retainLog: (holder: string, fromSeq: number | undefined) => store.retainLog?.(holder, fromSeq) } : {}),
    whenWritable,
  };
  return {
    node,
    get refused() {
      return refused;
    },
    refuse() {
      refusing = true;
      return () => {
        refusing = false;
        const ws = waiters;
        waiters = [];
        for (const w of ws) w();
      };
    },
  };
}

import type { LocalNode } from './types.js';

/** How long {@link untilWritable} waits for a node that cannot say when it is writable. */
export const WRITABLE_RETRY_MS = 1000;

/**
 * Waits until `node` takes replicated writes again (see {@link LocalNode.whenWritable}),
 * or {@link WRITABLE_RETRY_MS} for a node without that method. Resolves false, instead
 * of rejecting, when `signal` aborts or the store closes: the caller stops then.
 */
export async function untilWritable(node: LocalNode, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    if (node.whenWritable) await node.whenWritable(signal);
    else await delay(WRITABLE_RETRY_MS, signal);
  } catch {
    return false;
  }
  return !signal.aborted;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', abort, { once: true });
  });
}

import { expect } from 'vitest';

/** fast-check parameters for one property: reproducible, bounded in runs and time. */
export interface FuzzParameters {
  readonly seed: number;
  readonly numRuns: number;
  readonly interruptAfterTimeLimit: number;
  readonly markInterruptAsFailure: true;
}

/**
 * Parameters for the property of the current test: a fixed seed derived from the test's
 * name (so every run is the same), or FUZZ_SEED=<int> for all; `numRuns` runs at most,
 * and a property that runs longer than `timeLimitMs` (shrinking included) fails.
 * fast-check prints the seed and path of a failure.
 */
export function fuzzParameters(numRuns: number, timeLimitMs = 20_000): FuzzParameters {
  const limits = { numRuns, interruptAfterTimeLimit: timeLimitMs, markInterruptAsFailure: true } as const;
  const pinned = process.env['FUZZ_SEED'];
  if (pinned !== undefined && pinned !== '') {
    if (!/^-?\d{1,10}$/.test(pinned)) throw new Error(`FUZZ_SEED=${pinned} is not an integer`);
    return { seed: Number(pinned) | 0, ...limits };
  }
  const name = expect.getState().currentTestName ?? '';
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return { seed: h | 0, ...limits };
}

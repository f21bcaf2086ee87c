/** A histogram's state at one moment; later observations do not change it. */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets, ascending; the last bucket, above them all, is open. */
  readonly bounds: readonly number[];
  /** counts[i] observations were <= bounds[i] (and above the bound before); the last is above all. */
  readonly counts: readonly number[];
  /** Observations in all. */
  readonly count: number;
  /** Sum of the observed values. */
  readonly sum: number;
}

/**
 * A histogram with fixed buckets, in whatever unit the caller observes: per bucket a
 * count, and the count and sum of all observations. Prometheus' cumulative `le`
 * buckets are the running sums of `counts`. Observing costs no allocation.
 */
export class Histogram {
  /** Upper bounds of the buckets, strictly ascending. */
  readonly bounds: readonly number[];
  readonly #counts: number[];
  #count = 0;
  #sum = 0;

  /** @throws RangeError unless `bounds` are finite and strictly ascending. */
  constructor(bounds: readonly number[]) {
    for (const [i, b] of bounds.entries()) {
      if (!Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number))) {
        throw new RangeError(`histogram bounds must be finite and strictly ascending: ${bounds.join(', ')}`);
      }
    }
    this.bounds = bounds;
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Counts `v` in the first bucket whose bound is >= v, or in the open last bucket. */
  observe(v: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && v > (bounds[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#count++;
    this.#sum += v;
  }

  /** The state so far, copied. */
  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: [...this.#counts], count: this.#count, sum: this.#sum };
  }
}

/** Upper bounds (ms) of the replication-lag histogram buckets; the last bucket is open. */
export const LAG_BUCKETS_MS = [1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 10_000, 30_000] as const;

/** Replication lag of applied remote entries: commit time here minus the origin's write time. */
export interface LagHistogram {
  readonly bucketsMs: readonly number[];
  /** counts[i] entries had lag <= bucketsMs[i] (and more than the bucket before); the last is above all. */
  readonly counts: readonly number[];
  readonly count: number;
  readonly sumMs: number;
}

/** Small statistics for bench reports. */

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function stddev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The q-quantile (0…1) of sorted `xs`, linearly interpolated between order statistics. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

/** mulberry32: a small seeded PRNG, so that a report computed twice from the same data is the same. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A point estimate with its confidence interval. */
export interface Interval {
  readonly median: number;
  readonly low: number;
  readonly high: number;
}

/** Resamples drawn by {@link bootstrapInterval}. */
export const BOOTSTRAP_RESAMPLES = 4000;
/** Fewer samples than this give no interval: a bootstrap over one or two rounds says nothing. */
export const MIN_SAMPLES_FOR_INTERVAL = 3;

/**
 * The statistic of `groups` with a 95 % percentile-bootstrap interval: each resample
 * draws, within every group independently, as many samples as the group has, with
 * replacement, and applies `statistic` to the resampled groups. One group of per-round
 * ratios with `statistic = g => median(g[0])` is the interval of a median ratio; several
 * groups (one per configuration) with the mean of their medians is the interval of the
 * mean ratio. Deterministic (seeded). Null when a group has fewer than
 * {@link MIN_SAMPLES_FOR_INTERVAL} samples.
 */
export function bootstrapInterval(groups: readonly (readonly number[])[], statistic: (groups: readonly (readonly number[])[]) => number, level = 0.95): Interval | null {
  return nestedBootstrapInterval(
    groups.map((g) => [g]),
    statistic,
    level,
  );
}

/**
 * As {@link bootstrapInterval}, for groups whose samples come in clusters: per group, the
 * samples of each cluster (in `pnpm compare`, the rounds run on one generation of freshly
 * started clusters). A resample draws, per group, as many clusters as it has, with
 * replacement, then within each drawn cluster as many samples as it has, with
 * replacement, and pools them: the two-stage bootstrap, which carries the differences
 * between clusters into the interval (and, with few clusters, errs wide). A group of one
 * cluster is resampled exactly as by {@link bootstrapInterval}. `statistic` gets each
 * group's samples pooled (the point estimate: all of them). Null when a group has fewer
 * than {@link MIN_SAMPLES_FOR_INTERVAL} samples in all.
 */
export function nestedBootstrapInterval(
  groups: readonly (readonly (readonly number[])[])[],
  statistic: (groups: readonly (readonly number[])[]) => number,
  level = 0.95,
): Interval | null {
  const pooled = groups.map((g) => g.flat());
  if (groups.length === 0 || pooled.some((g) => g.length < MIN_SAMPLES_FOR_INTERVAL) || groups.some((g) => g.some((c) => c.length === 0))) return null;
  const random = seededRandom(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const estimates: number[] = [];
  for (let b = 0; b < BOOTSTRAP_RESAMPLES; b++) {
    const resampled = groups.map((clusters) => {
      const drawn = clusters.length === 1 ? clusters : Array.from(clusters, () => pick(clusters));
      return drawn.flatMap((c) => Array.from(c, () => pick(c)));
    });
    estimates.push(statistic(resampled));
  }
  estimates.sort((x, y) => x - y);
  const tail = (1 - level) / 2;
  return { median: statistic(pooled), low: quantile(estimates, tail), high: quantile(estimates, 1 - tail) };
}

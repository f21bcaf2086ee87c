// The figures `pnpm compare` reports beyond single runs. Rounds are paired: in round k
// every transport ran once, back to back on the same machine, so the ratio of round k
// (plexus ÷ the nats mode) is free of the drift between rounds. Per configuration the
// report gives the median of those per-round ratios with a 95 % bootstrap interval, the
// same for the CPU each path spends per write, and across configurations the mean of the
// medians with its own interval. The bootstrap resamples rounds; with several generations
// of clusters it first resamples the generations, then rounds within each (two-stage), so
// that the interval also holds what differs from one start of the clusters to the next.
import { isRun, variantOf, type Run, type Variant } from '../cluster-run.js';
import type { IdMode } from '../records.js';
import { COMPONENTS, type Breakdown, type Component } from '../explain.js';
import { mean, median, nestedBootstrapInterval, stddev, type Interval } from '../stats.js';
import type { CompareOptions } from './args.js';
import { generationOf, type ComparedOutcome } from './execute.js';
import { configsOf, type Config } from './plan.js';

/** The published Harper 4.3 → 4.4 replicated-write gain: mean and standard deviation over 4/5/6/8 nodes. */
export const PUBLISHED = { mean: 1.51, std: 0.09 } as const;

/** A ratio's 95 % interval, or null with fewer than 3 paired rounds. */
export type Bounds = { readonly low: number; readonly high: number } | null;

export interface Ratio {
  readonly nodes: number;
  readonly ids: IdMode;
  /** The nats mode plexus is measured against: per-write or batched. */
  readonly versus: string;
  /** Median over rounds of plexus's replicated/s ÷ the nats mode's in the same round, 3 decimals; null if any round of either failed or was not verified. */
  readonly ratio: number | null;
  readonly interval: Bounds;
  /** Median over rounds of the nats mode's CPU per write ÷ plexus's (every node and broker process): above 1, plexus spends less. */
  readonly cpuRatio: number | null;
  readonly cpuInterval: Bounds;
  /** Paired rounds behind the figures. */
  readonly rounds: number;
  /** Generations of clusters those rounds ran on. */
  readonly generations: number;
}

export interface RatioStats {
  /** Mean over configurations of their median ratios. */
  readonly mean: number | null;
  readonly std: number | null;
  readonly interval: Bounds;
  readonly cpuMean: number | null;
  readonly cpuInterval: Bounds;
  /** How many configurations have a ratio. */
  readonly n: number;
}

/** Where an interval lies against the published 1.51 ± 0.09. */
export interface PublishedCheck {
  /** The interval contains 1.51. */
  readonly coversMean: boolean;
  /** The interval and 1.51 ± 0.09 (1.42…1.60) share some value. */
  readonly overlapsRange: boolean;
}

export interface Aggregate {
  readonly configs: readonly Config[];
  /** The nats modes that ran, in the order of the transports. */
  readonly versusModes: readonly string[];
  /** One per configuration and nats mode, configurations first. */
  readonly ratios: readonly Ratio[];
  readonly perWrite: RatioStats;
  readonly batched: RatioStats;
  /** Median replicated/s of `variant` in `c` over its rounds; undefined if any round failed or was not verified. */
  medianOf(variant: Variant, c: Config): number | undefined;
  /** Median CPU seconds per 1,000 replicated writes (nodes + brokers) of `variant` in `c`; undefined as for medianOf. */
  cpuOf(variant: Variant, c: Config): number | undefined;
  /** The ratio of `c` against nats mode `versus`, undefined where that pair did not run. */
  ratioOf(c: Config, versus: string): Ratio | undefined;
  /** --explain: per component the median over rounds of `variant` in `c` (ms per write); undefined without breakdowns. */
  breakdownOf(variant: Variant, c: Config): Breakdown | undefined;
}

const round3 = (x: number) => Number(x.toFixed(3));
const bounds = (i: Interval | null): Bounds => (i ? { low: round3(i.low), high: round3(i.high) } : null);
const cpuPer1k = (r: Run) => r.cpuSecPer1kWrites.nodes + r.cpuSecPer1kWrites.brokers;

/** Whether `b` covers and overlaps the published figure. */
export function againstPublished(b: Bounds): PublishedCheck | null {
  if (!b) return null;
  return { coversMean: b.low <= PUBLISHED.mean && PUBLISHED.mean <= b.high, overlapsRange: b.low <= PUBLISHED.mean + PUBLISHED.std && PUBLISHED.mean - PUBLISHED.std <= b.high };
}

/** Medians, paired ratios, intervals and their statistics of `outcomes`, in the order the report prints them. */
export function aggregate(o: Pick<CompareOptions, 'nodes' | 'ids' | 'transports'>, outcomes: readonly ComparedOutcome[]): Aggregate {
  const configs = configsOf(o);
  /** Every round of `variant` in `c`, by round; undefined if any failed or was not verified (or none ran). */
  const roundsOf = (variant: Variant, c: Config): Map<number, Run & ComparedOutcome> | undefined => {
    const xs = outcomes.filter((x) => variantOf(x) === variant && x.nodes === c.nodes && x.ids === c.ids);
    if (xs.length === 0 || xs.some((x) => !isRun(x) || !x.verified)) return undefined;
    return new Map(xs.map((x) => [x.round, x as Run & ComparedOutcome]));
  };
  /** Samples grouped by generation, in generation order. */
  const byGeneration = (xs: readonly { generation: number; value: number }[]): number[][] => {
    const groups = new Map<number, number[]>();
    for (const x of xs) {
      const g = groups.get(x.generation);
      if (g) g.push(x.value);
      else groups.set(x.generation, [x.value]);
    }
    return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  };
  const medianOf = (variant: Variant, c: Config) => {
    const rs = roundsOf(variant, c);
    return rs ? median([...rs.values()].map((r) => r.replicatedPerSec)) : undefined;
  };
  const cpuOf = (variant: Variant, c: Config) => {
    const rs = roundsOf(variant, c);
    return rs ? Number(median([...rs.values()].map(cpuPer1k)).toFixed(4)) : undefined;
  };
  const versusModes = o.transports.filter((v) => v !== 'plexus' && v !== 'none').map((v) => v.slice(5));
  // per configuration and mode, the per-round ratios by generation, for the intervals of the means
  const paired = new Map<string, { speed: number[][]; cpu: number[][] }>();
  const ratios: Ratio[] = [];
  for (const c of configs) {
    const plexus = roundsOf('plexus', c);
    for (const mode of versusModes) {
      const nats = roundsOf(`nats-${mode}` as Variant, c);
      const speed: { generation: number; value: number }[] = [];
      const cpu: { generation: number; value: number }[] = [];
      if (plexus && nats) {
        for (const [k, p] of plexus) {
          const n = nats.get(k);
          if (!n || n.replicatedPerSec <= 0) continue;
          const generation = generationOf(p);
          speed.push({ generation, value: p.replicatedPerSec / n.replicatedPerSec });
          if (cpuPer1k(p) > 0) cpu.push({ generation, value: cpuPer1k(n) / cpuPer1k(p) });
        }
      }
      const groups = { speed: byGeneration(speed), cpu: byGeneration(cpu) };
      if (speed.length > 0) paired.set(`${c.nodes}/${c.ids}/${mode}`, groups);
      const med = (xs: readonly { value: number }[]) => (xs.length ? round3(median(xs.map((x) => x.value))) : null);
      const interval = (g: number[][]) => bounds(nestedBootstrapInterval([g], (p) => median(p[0] as number[])));
      ratios.push({ nodes: c.nodes, ids: c.ids, versus: mode, ratio: med(speed), interval: interval(groups.speed), cpuRatio: med(cpu), cpuInterval: interval(groups.cpu), rounds: speed.length, generations: groups.speed.length });
    }
  }
  const statsOf = (mode: string): RatioStats => {
    const groups = configs.flatMap((c) => paired.get(`${c.nodes}/${c.ids}/${mode}`) ?? []);
    const xs = ratios.filter((r) => r.versus === mode && r.ratio !== null).map((r) => r.ratio as number);
    const cs = ratios.filter((r) => r.versus === mode && r.cpuRatio !== null).map((r) => r.cpuRatio as number);
    const meanOfMedians = (g: readonly (readonly number[])[]) => mean(g.map((x) => median(x)));
    return {
      mean: xs.length ? round3(mean(xs)) : null,
      std: xs.length ? round3(stddev(xs)) : null,
      interval: bounds(nestedBootstrapInterval(groups.map((g) => g.speed), meanOfMedians)),
      cpuMean: cs.length ? round3(mean(cs)) : null,
      cpuInterval: cs.length === groups.length ? bounds(nestedBootstrapInterval(groups.map((g) => g.cpu), meanOfMedians)) : null,
      n: xs.length,
    };
  };
  return {
    configs,
    versusModes,
    ratios,
    perWrite: statsOf('per-write'),
    batched: statsOf('batched'),
    medianOf,
    cpuOf,
    ratioOf: (c, versus) => ratios.find((r) => r.nodes === c.nodes && r.ids === c.ids && r.versus === versus),
    breakdownOf: (variant, c) => {
      const rs = roundsOf(variant, c);
      const bs = rs ? [...rs.values()].flatMap((r) => r.breakdown ?? []) : [];
      if (bs.length === 0) return undefined;
      const med = (f: (b: Breakdown) => number) => Number(median(bs.map(f)).toFixed(4));
      return { msPerWrite: Object.fromEntries(COMPONENTS.map((k: Component) => [k, med((b) => b.msPerWrite[k])])) as Record<Component, number>, sum: med((b) => b.sum), total: med((b) => b.total) };
    },
  };
}

// The figures `pnpm compare` reports beyond single runs: medians over rounds, the
// plexus/nats ratio per configuration, and the mean and spread of those ratios.
import { isRun, variantOf, type Variant } from '../cluster-run.js';
import type { IdMode } from '../records.js';
import { mean, median, stddev } from '../stats.js';
import type { CompareOptions } from './args.js';
import type { ComparedOutcome } from './execute.js';
import { configsOf, type Config } from './plan.js';

export interface Ratio {
  readonly nodes: number;
  readonly ids: IdMode;
  /** The nats mode plexus is measured against: per-write or batched. */
  readonly versus: string;
  /** Plexus's median replicated/s ÷ the nats mode's, 3 decimals; null if either has a failed or unverified round. */
  readonly ratio: number | null;
}

export interface RatioStats {
  readonly mean: number | null;
  readonly std: number | null;
  /** How many configurations have a ratio. */
  readonly n: number;
}

export interface Aggregate {
  readonly configs: readonly Config[];
  /** The nats modes that ran, in the order of --transports. */
  readonly versusModes: readonly string[];
  /** One per configuration and nats mode, configurations first. */
  readonly ratios: readonly Ratio[];
  readonly perWrite: RatioStats;
  readonly batched: RatioStats;
  /** Median replicated/s of `variant` in `c` over its rounds; undefined if any round failed or was not verified. */
  medianOf(variant: Variant, c: Config): number | undefined;
  /** The ratio of `c` against nats mode `versus`, null where there is none. */
  ratioOf(c: Config, versus: string): number | null;
}

/** Medians, ratios and ratio statistics of `outcomes`, in the order the report prints them. */
export function aggregate(o: Pick<CompareOptions, 'nodes' | 'ids' | 'transports'>, outcomes: readonly ComparedOutcome[]): Aggregate {
  const configs = configsOf(o);
  const medianOf = (variant: Variant, c: Config): number | undefined => {
    const xs = outcomes.filter((x) => variantOf(x) === variant && x.nodes === c.nodes && x.ids === c.ids);
    if (xs.length === 0 || xs.some((x) => !isRun(x) || !x.verified)) return undefined;
    return median(xs.map((x) => x.replicatedPerSec));
  };
  const versusModes = o.transports.filter((v) => v !== 'plexus').map((v) => v.slice(5));
  const ratios: Ratio[] = [];
  for (const c of configs) {
    const plexus = medianOf('plexus', c);
    for (const mode of versusModes) {
      const nats = medianOf(`nats-${mode}` as Variant, c);
      ratios.push({ nodes: c.nodes, ids: c.ids, versus: mode, ratio: plexus !== undefined && nats ? Number((plexus / nats).toFixed(3)) : null });
    }
  }
  const statsOf = (mode: string): RatioStats => {
    const xs = ratios.filter((r) => r.versus === mode && r.ratio !== null).map((r) => r.ratio as number);
    return { mean: xs.length ? Number(mean(xs).toFixed(3)) : null, std: xs.length ? Number(stddev(xs).toFixed(3)) : null, n: xs.length };
  };
  return {
    configs,
    versusModes,
    ratios,
    perWrite: statsOf('per-write'),
    batched: statsOf('batched'),
    medianOf,
    ratioOf: (c, versus) => ratios.find((r) => r.nodes === c.nodes && r.ids === c.ids && r.versus === versus)?.ratio ?? null,
  };
}

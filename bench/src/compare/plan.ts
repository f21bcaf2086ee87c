// Which configurations `pnpm compare` measures, and in what order the transports of a
// round run.
import type { Variant } from '../cluster-run.js';
import type { IdMode } from '../records.js';
import type { CompareOptions } from './args.js';

/** A cluster size with a key mode: one row of the ratio table. */
export interface Config {
  readonly nodes: number;
  readonly ids: IdMode;
}

/** A configuration as it runs: an optional single-node baseline first, then rounds of `variants`. */
export interface PlannedConfig extends Config {
  readonly baseline: boolean;
  readonly variants: readonly Variant[];
}

/** Every configuration: per key mode (in the order given) every cluster size (in the order given). */
export function configsOf(o: Pick<CompareOptions, 'nodes' | 'ids'>): Config[] {
  return o.ids.flatMap((ids) => o.nodes.map((nodes) => ({ nodes, ids })));
}

/**
 * Every configuration in order, the first of each key mode carrying the single-node
 * baseline when asked for.
 */
export function buildPlan(o: Pick<CompareOptions, 'nodes' | 'ids' | 'transports' | 'baseline'>): PlannedConfig[] {
  return configsOf(o).map((c, i) => ({ ...c, baseline: o.baseline && (i === 0 || configsOf(o)[i - 1]?.ids !== c.ids), variants: o.transports }));
}

/** The order the transports run in round `round` (0-based): rotated by one each round, so that none always goes first. */
export function roundOrder(variants: readonly Variant[], round: number): Variant[] {
  return variants.map((_, k) => variants[(k + round) % variants.length] as Variant);
}

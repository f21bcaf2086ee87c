// Which runs `pnpm compare` makes, and in what order.
import type { Variant } from '../cluster-run.js';
import type { IdMode } from '../records.js';
import type { CompareOptions } from './args.js';

/** A cluster size with a key mode: one row of the ratio table. */
export interface Config {
  readonly nodes: number;
  readonly ids: IdMode;
}

export interface PlannedRun {
  readonly variant: Variant;
  readonly nodes: number;
  readonly ids: IdMode;
  /** 0 for the first run of this variant, size and key mode, 1 for the second, … */
  readonly round: number;
}

/** Every configuration: per key mode (in the order given) every cluster size (in the order given). */
export function configsOf(o: Pick<CompareOptions, 'nodes' | 'ids'>): Config[] {
  return o.ids.flatMap((ids) => o.nodes.map((nodes) => ({ nodes, ids })));
}

/**
 * Every run, in order: per key mode an optional single-node baseline, then per
 * configuration and round every transport once, the order rotated by one each round
 * so that none always goes first. Each run knows its round.
 */
export function buildPlan(o: Pick<CompareOptions, 'nodes' | 'ids' | 'transports' | 'rounds' | 'baseline'>): PlannedRun[] {
  const order: Omit<PlannedRun, 'round'>[] = [];
  for (const ids of o.ids) {
    if (o.baseline) order.push({ variant: 'none', nodes: 1, ids });
    for (const nodes of o.nodes) {
      for (let r = 0; r < o.rounds; r++) {
        for (let k = 0; k < o.transports.length; k++) order.push({ variant: o.transports[(k + r) % o.transports.length] as Variant, nodes, ids });
      }
    }
  }
  const seen = new Map<string, number>();
  return order.map((p) => {
    const key = `${p.variant}/${p.nodes}/${p.ids}`;
    const round = seen.get(key) ?? 0;
    seen.set(key, round + 1);
    return { ...p, round };
  });
}

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { variantOf, type Variant } from '../src/cluster-run.js';
import type { CompareOptions } from '../src/compare/args.js';
import { buildPlan, configsOf } from '../src/compare/plan.js';
import type { IdMode } from '../src/records.js';

type PlanOptions = Pick<CompareOptions, 'nodes' | 'ids' | 'transports' | 'rounds' | 'baseline'>;
const short = (o: PlanOptions) => buildPlan(o).map((p) => `${p.variant}/${p.nodes}/${p.ids}/${p.round}`);

describe('compare plan', () => {
  it('lists configurations per key mode, then per cluster size, in the order given', () => {
    expect(configsOf({ nodes: [5, 4], ids: ['sequential', 'random'] })).toEqual([
      { nodes: 5, ids: 'sequential' },
      { nodes: 4, ids: 'sequential' },
      { nodes: 5, ids: 'random' },
      { nodes: 4, ids: 'random' },
    ]);
  });

  it('opens each key mode with the single-node baseline, then runs every transport per configuration', () => {
    expect(short({ nodes: [2, 3], ids: ['random', 'sequential'], transports: ['plexus', 'nats-batched'], rounds: 1, baseline: true })).toEqual([
      'none/1/random/0',
      'plexus/2/random/0',
      'nats-batched/2/random/0',
      'plexus/3/random/0',
      'nats-batched/3/random/0',
      'none/1/sequential/0',
      'plexus/2/sequential/0',
      'nats-batched/2/sequential/0',
      'plexus/3/sequential/0',
      'nats-batched/3/sequential/0',
    ]);
  });

  it('rotates the order by one each round, so no transport always goes first', () => {
    expect(short({ nodes: [4], ids: ['random'], transports: ['plexus', 'nats-per-write', 'nats-batched'], rounds: 4, baseline: false })).toEqual([
      'plexus/4/random/0',
      'nats-per-write/4/random/0',
      'nats-batched/4/random/0',
      'nats-per-write/4/random/1',
      'nats-batched/4/random/1',
      'plexus/4/random/1',
      'nats-batched/4/random/2',
      'plexus/4/random/2',
      'nats-per-write/4/random/2',
      'plexus/4/random/3',
      'nats-per-write/4/random/3',
      'nats-batched/4/random/3',
    ]);
  });

  it('counts rounds per transport, size and key mode, also when a size is given twice', () => {
    expect(short({ nodes: [2, 2], ids: ['random'], transports: ['plexus'], rounds: 2, baseline: false })).toEqual(['plexus/2/random/0', 'plexus/2/random/1', 'plexus/2/random/2', 'plexus/2/random/3']);
  });

  it('is the order of the runs in every stored compare result', () => {
    const dir = fileURLToPath(new URL('../results/', import.meta.url));
    const files = readdirSync(dir).filter((f) => /^compare-.*\.json$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const stored = JSON.parse(readFileSync(`${dir}${f}`, 'utf8')) as {
        options: PlanOptions;
        runs: { transport: 'plexus' | 'nats' | 'none'; mode: string; nodes: number; ids: IdMode; round: number }[];
      };
      const runs = stored.runs.map((r) => ({ variant: variantOf(r) as Variant, nodes: r.nodes, ids: r.ids, round: r.round }));
      expect(buildPlan(stored.options), f).toEqual(runs);
    }
  });
});

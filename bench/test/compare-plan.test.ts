import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { variantOf, type Variant } from '../src/cluster-run.js';
import type { CompareOptions } from '../src/compare/args.js';
import { buildPlan, configsOf, roundOrder } from '../src/compare/plan.js';
import { REPORT_FORMAT } from '../src/compare/report.js';
import type { IdMode } from '../src/records.js';

describe('compare plan', () => {
  it('lists configurations per key mode, then per cluster size, in the order given', () => {
    expect(configsOf({ nodes: [5, 4], ids: ['sequential', 'random'] })).toEqual([
      { nodes: 5, ids: 'sequential' },
      { nodes: 4, ids: 'sequential' },
      { nodes: 5, ids: 'random' },
      { nodes: 4, ids: 'random' },
    ]);
  });

  it('opens each key mode with the single-node baseline, and runs every transport in every configuration', () => {
    const plan = buildPlan({ nodes: [2, 3], ids: ['random', 'sequential'], transports: ['plexus', 'nats-batched'], baseline: true });
    expect(plan.map((c) => `${c.nodes}/${c.ids}/${c.baseline}/${c.variants.join('+')}`)).toEqual([
      '2/random/true/plexus+nats-batched',
      '3/random/false/plexus+nats-batched',
      '2/sequential/true/plexus+nats-batched',
      '3/sequential/false/plexus+nats-batched',
    ]);
    expect(buildPlan({ nodes: [2], ids: ['random'], transports: ['plexus'], baseline: false })[0]?.baseline).toBe(false);
  });

  it('rotates the order by one each round, so no transport always goes first', () => {
    const v: Variant[] = ['plexus', 'nats-per-write', 'nats-batched'];
    expect([0, 1, 2, 3].map((r) => roundOrder(v, r).join(' '))).toEqual([
      'plexus nats-per-write nats-batched',
      'nats-per-write nats-batched plexus',
      'nats-batched plexus nats-per-write',
      'plexus nats-per-write nats-batched',
    ]);
  });

  it('is the order of the runs in every stored compare result since format 2', () => {
    const dir = fileURLToPath(new URL('../results/', import.meta.url));
    const stored = readdirSync(dir)
      .filter((f) => /^compare-.*\.json$/.test(f))
      .map((f) => ({ f, data: JSON.parse(readFileSync(`${dir}${f}`, 'utf8')) as { format?: number; options: Pick<CompareOptions, 'nodes' | 'ids' | 'transports' | 'baseline'>; runs: { transport: 'plexus' | 'nats' | 'none'; mode: string; nodes: number; ids: IdMode; round: number }[] } }))
      .filter((x) => (x.data.format ?? 0) >= 2 && (x.data.format ?? 0) <= REPORT_FORMAT); // rounds are ordered so since format 2
    expect(stored.length).toBeGreaterThan(0);
    for (const { f, data } of stored) {
      const expected: string[] = [];
      for (const c of buildPlan(data.options)) {
        if (c.baseline) expected.push(`none/1/${c.ids}/0`);
        const rounds = new Set(data.runs.filter((r) => r.nodes === c.nodes && r.ids === c.ids && r.transport !== 'none').map((r) => r.round)).size;
        for (let r = 0; r < rounds; r++) for (const v of roundOrder(c.variants, r)) expected.push(`${v}/${c.nodes}/${c.ids}/${r}`);
      }
      expect(data.runs.map((r) => `${variantOf(r)}/${r.nodes}/${r.ids}/${r.round}`), f).toEqual(expected);
    }
  });
});

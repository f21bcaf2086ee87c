import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Progress, Run, RunOptions } from '../src/cluster-run.js';
import { aggregate } from '../src/compare/aggregate.js';
import type { CompareOptions } from '../src/compare/args.js';
import { executePlan, type ComparedOutcome } from '../src/compare/execute.js';
import { buildPlan } from '../src/compare/plan.js';
import type { ProgressReporter } from '../src/compare/progress.js';
import { buildReport } from '../src/compare/report.js';
import type { MachineInfo } from '../src/env-info.js';

const RESULTS = fileURLToPath(new URL('../results/', import.meta.url));

const run = (o: Pick<RunOptions, 'variant' | 'nodes' | 'ids'>, replicatedPerSec: number): Run => ({
  transport: o.variant.startsWith('nats') ? 'nats' : (o.variant as 'plexus' | 'none'),
  mode: { none: 'standalone', plexus: 'direct', 'nats-per-write': 'per-write', 'nats-batched': 'batched' }[o.variant],
  nodes: o.nodes,
  ids: o.ids,
  records: 100,
  acceptedPerSec: replicatedPerSec + 10,
  replicatedPerSec,
  postP50Ms: 1,
  postP99Ms: 2,
  lagP50Ms: 3,
  lagP99Ms: 4,
  entriesPerFrame: 5,
  cpuSecPer1kWrites: { nodes: 0.1, brokers: 0, loadgen: 0.01 },
  cpuSec: { nodes: [1], brokers: [], loadgen: 0.1 },
  peakRssMiB: { nodes: [100], brokers: [] },
  errors: 0,
  verified: true,
  digest: 'd',
  seconds: 1,
});

const silent: ProgressReporter = { update: () => {}, finished: () => {}, failed: () => {} };

describe('compare report', () => {
  it('reproduces every stored result byte for byte: markdown, chart and data', () => {
    const files = readdirSync(RESULTS).filter((f) => /^compare-.*\.json$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    // The header shows the minutes with one decimal, the data keeps two: rounding twice may differ.
    const minutesOff = (md: string) => md.replace(/; took [\d.]+ min\n/, '; took … min\n');
    for (const f of files) {
      const text = readFileSync(`${RESULTS}${f}`, 'utf8');
      const stored = JSON.parse(text) as MachineInfo & { options: Omit<CompareOptions, 'out'>; runs: ComparedOutcome[]; minutes: number; ratios: unknown[] };
      const { sha, node, cpu, cores, memoryGiB, date } = stored;
      const report = buildReport({ options: { ...stored.options, out: RESULTS }, outcomes: stored.runs, info: { sha, node, cpu, cores, memoryGiB, date }, minutes: stored.minutes });
      const base = `${RESULTS}${f.replace(/\.json$/, '')}`;
      expect(report.base.replace(/\\/g, '/'), f).toBe(base.replace(/\\/g, '/'));
      expect(report.json, f).toBe(text);
      expect(report.svg, f).toBe(readFileSync(`${base}.svg`, 'utf8'));
      expect(minutesOff(report.markdown), f).toBe(minutesOff(readFileSync(`${base}.md`, 'utf8')));
      const last = report.stdout.trimEnd().split('\n').at(-1) as string;
      expect(JSON.parse(last)).toMatchObject({ report: `${base}.md`, sha, ratios: stored.ratios });
    }
  });

  it('has no ratio for a configuration with a failed or unverified round, and leaves it out of the mean', () => {
    const o = { nodes: [2, 3], ids: ['random'], transports: ['plexus', 'nats-per-write'], rounds: 2, baseline: false } as const;
    const outcomes: ComparedOutcome[] = buildPlan(o).map((p) => {
      const r = run(p, p.variant === 'plexus' ? 300 + p.round * 100 : 200);
      return { ...(p.nodes === 3 && p.variant === 'nats-per-write' && p.round === 1 ? { ...r, verified: false } : r), round: p.round };
    });
    const a = aggregate(o, outcomes);
    expect(a.medianOf('plexus', { nodes: 2, ids: 'random' })).toBe(350);
    expect(a.medianOf('nats-per-write', { nodes: 3, ids: 'random' })).toBeUndefined();
    expect(a.ratios).toEqual([
      { nodes: 2, ids: 'random', versus: 'per-write', ratio: 1.75 },
      { nodes: 3, ids: 'random', versus: 'per-write', ratio: null },
    ]);
    expect(a.perWrite).toEqual({ mean: 1.75, std: 0, n: 1 });
    expect(a.batched).toEqual({ mean: null, std: null, n: 0 });
  });
});

describe('compare execution', () => {
  it('runs the plan in order, and records a run that throws as failed with its round', async () => {
    const plan = buildPlan({ nodes: [2], ids: ['random'], transports: ['plexus', 'nats-batched'], rounds: 2, baseline: false });
    const seen: string[] = [];
    const progress: ProgressReporter = {
      update: (i, _p, s: Progress) => seen.push(`${i} ${s.phase}`),
      finished: (i) => seen.push(`${i} finished`),
      failed: (i, _p, failure) => seen.push(`${i} failed: ${failure}`),
    };
    const outcomes = await executePlan(plan, { records: 100, warmup: 0, connections: 4 }, progress, async (o) => {
      expect(o).toMatchObject({ records: 100, warmup: 0, connections: 4 });
      o.onProgress?.({ phase: 'starting', elapsedSec: 0, most: 0, everywhere: 0 });
      if (o.tag === '2') throw new Error('no cluster');
      return run(o, 100);
    });
    expect(outcomes.map((x) => `${x.transport}/${x.mode}/${x.round}/${x.verified}`)).toEqual(['plexus/direct/0/true', 'nats/batched/0/true', 'nats/batched/1/false', 'plexus/direct/1/true']);
    expect(outcomes[2]).toEqual({ transport: 'nats', mode: 'batched', nodes: 2, ids: 'random', records: 0, acceptedPerSec: 0, replicatedPerSec: 0, errors: 1, verified: false, failure: 'no cluster', round: 1 });
    expect(seen).toEqual(['0 starting', '0 finished', '1 starting', '1 finished', '2 starting', '2 failed: no cluster', '3 starting', '3 finished']);
    expect(await executePlan([], { records: 1, warmup: 0, connections: 1 }, silent)).toEqual([]);
  });
});

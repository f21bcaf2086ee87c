import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Progress, Run, RoundOptions } from '../src/cluster-run.js';
import { isTableName } from '@replica/transport-api';
import { aggregate } from '../src/compare/aggregate.js';
import { bootstrapInterval, median, nestedBootstrapInterval } from '../src/stats.js';
import { parseCompareArgs, type CompareOptions } from '../src/compare/args.js';
import { executePlan, type ComparedOutcome, type Runner } from '../src/compare/execute.js';
import { buildPlan, roundOrder } from '../src/compare/plan.js';
import type { ProgressReporter } from '../src/compare/progress.js';
import { buildReport, REPORT_FORMAT } from '../src/compare/report.js';
import type { Deployment, Variant } from '../src/deployment.js';
import type { MachineInfo } from '../src/env-info.js';

const RESULTS = fileURLToPath(new URL('../results/', import.meta.url));

const run = (o: { variant: Variant; nodes: number; ids: 'random' | 'sequential' }, replicatedPerSec: number, cpuPer1k = 0.1): Run => ({
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
  cpuSecPer1kWrites: { nodes: cpuPer1k, brokers: 0, loadgen: 0.01 },
  cpuSec: { nodes: [1], brokers: [], loadgen: 0.1 },
  peakRssMiB: { nodes: [100], brokers: [] },
  errors: 0,
  verified: true,
  digest: 'd',
  seconds: 1,
});

const silent: ProgressReporter = { update: () => {}, finished: () => {}, failed: () => {} };
const opts = (argv: string[]): CompareOptions => {
  const p = parseCompareArgs(argv);
  if (p.help || p.version) throw new Error('options expected');
  return p.options;
};

/** Outcomes of `rounds` paired rounds per configuration, `speed(variant, nodes, round)` giving each run's replicated/s. */
function outcomesOf(o: CompareOptions, rounds: number, speed: (v: Variant, nodes: number, round: number) => number, cpu: (v: Variant) => number = () => 0.1): ComparedOutcome[] {
  return buildPlan(o).flatMap((c) =>
    Array.from({ length: rounds }, (_, r) => roundOrder(c.variants, r).map((v) => ({ ...run({ variant: v, nodes: c.nodes, ids: c.ids }, speed(v, c.nodes, r), cpu(v)), round: r }))).flat(),
  );
}

describe('compare report', () => {
  it('reproduces every stored result of the current format byte for byte: markdown, chart and data', () => {
    const files = readdirSync(RESULTS).filter((f) => /^compare-.*\.json$/.test(f) && (JSON.parse(readFileSync(`${RESULTS}${f}`, 'utf8')) as { format?: number }).format === REPORT_FORMAT);
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

  it('pairs the runs of each round: the ratio is the median of per-round ratios, inside its interval, with the CPU ratio beside it', () => {
    const o = opts(['--nodes', '2,3', '--ids', 'random', '--transports', 'plexus,nats-per-write', '--baseline', 'no']);
    // the machine drifts: round r runs at (1 + r/10) of its speed, plexus always 1.5× per-write
    const outcomes = outcomesOf(o, 5, (v, nodes, r) => (v === 'plexus' ? 1500 : 1000) * (1 + r / 10) * (nodes === 3 ? 0.9 : 1), (v) => (v === 'plexus' ? 0.2 : 0.3));
    const a = aggregate(o, outcomes);
    for (const r of a.ratios) {
      expect(r).toMatchObject({ versus: 'per-write', ratio: 1.5, cpuRatio: 1.5, rounds: 5 });
      expect(r.interval?.low).toBeCloseTo(1.5, 2); // drift cancels out within a round
      expect(r.interval?.high).toBeCloseTo(1.5, 2);
    }
    expect(a.perWrite).toMatchObject({ mean: 1.5, std: 0, n: 2, cpuMean: 1.5 });
    expect(a.cpuOf('plexus', { nodes: 2, ids: 'random' })).toBe(0.2);
    const report = buildReport({ options: o, outcomes, info: { sha: 'abc', node: 'v20', cpu: 'cpu', cores: 2, memoryGiB: 24, date: '2026-12-02T00:00:00.000Z' }, minutes: 1 });
    const summary = JSON.parse(report.stdout.trimEnd().split('\n').at(-1) as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ meanRatio: 1.5, meanRatioInterval: { low: 1.5, high: 1.5 }, meanCpuRatio: 1.5, published: { mean: 1.51, std: 0.09, coversMean: false, overlapsRange: true } });
    expect(report.markdown).toContain('does not cover 1.51 but overlaps the published 1.51 ± 0.09');
    expect(report.svg.match(/<svg /g)).toHaveLength(3); // the document and its two charts
  });

  it('gives a noisy configuration a wider interval that still holds its median; no interval under 3 rounds', () => {
    const o = opts(['--nodes', '4', '--ids', 'random', '--transports', 'plexus,nats-per-write', '--baseline', 'no']);
    const noise = [1.2, 1.7, 1.4, 1.9, 1.3, 1.6, 1.5];
    const a = aggregate(o, outcomesOf(o, noise.length, (v, _n, r) => (v === 'plexus' ? 1000 * (noise[r] as number) : 1000)));
    const r = a.ratios[0];
    expect(r?.ratio).toBe(1.5);
    expect(r?.interval?.low).toBeLessThan(1.5);
    expect(r?.interval?.high).toBeGreaterThan(1.5);
    expect(r?.interval?.low).toBeGreaterThanOrEqual(1.2);
    expect(r?.interval?.high).toBeLessThanOrEqual(1.9);
    expect(buildReport({ options: o, outcomes: outcomesOf(o, noise.length, (v, _n, k) => (v === 'plexus' ? 1000 * (noise[k] as number) : 1000)), info: { sha: 'a', node: 'v', cpu: 'c', cores: 2, memoryGiB: 1, date: '2026-12-02T00:00:00.000Z' }, minutes: 1 }).markdown).toContain('covers the published 1.51 ± 0.09');
    const two = aggregate(o, outcomesOf(o, 2, (v) => (v === 'plexus' ? 1500 : 1000)));
    expect(two.ratios[0]).toMatchObject({ ratio: 1.5, interval: null, rounds: 2 });
    expect(two.perWrite.interval).toBeNull();
  });

  it('with generations of clusters, resamples the generations too: clusters that differ widen the interval, which still holds the median', () => {
    const med = (g: readonly (readonly number[])[]) => median(g[0] as number[]);
    // three generations of five rounds, each generation about its own level (1.22, 1.30, 1.26)
    const rounds = [1.2, 1.25, 1.22, 1.21, 1.23, 1.3, 1.31, 1.29, 1.3, 1.32, 1.25, 1.26, 1.27, 1.24, 1.28];
    // one generation: exactly the bootstrap over rounds
    expect(nestedBootstrapInterval([[rounds]], med)).toEqual(bootstrapInterval([rounds], med));
    const flat = nestedBootstrapInterval([[rounds]], med);
    const split = nestedBootstrapInterval([[rounds.slice(0, 5), rounds.slice(5, 10), rounds.slice(10)]], med);
    expect(split?.median).toBe(flat?.median);
    expect((split?.high ?? 0) - (split?.low ?? 0)).toBeGreaterThan((flat?.high ?? 0) - (flat?.low ?? 0));
    // the bootstrap over rounds alone misses the generations' own levels; the two-stage one holds them
    expect([flat?.low, flat?.high]).toEqual([expect.closeTo(1.24, 2), expect.closeTo(1.29, 2)]);
    expect([split?.low, split?.high]).toEqual([expect.closeTo(1.22, 2), expect.closeTo(1.3, 2)]);
    expect(nestedBootstrapInterval([[[1.2], [1.3]]], med)).toBeNull(); // 2 samples in all
    // through the aggregate: the same rounds on three generations
    const o = opts(['--nodes', '4', '--ids', 'random', '--transports', 'plexus,nats-per-write', '--baseline', 'no', '--generations', '3']);
    const outcomes = outcomesOf(o, rounds.length, (v, _n, r) => (v === 'plexus' ? 1000 * (rounds[r] as number) : 1000)).map((x) => ({ ...x, generation: Math.floor(x.round / 5) }));
    const a = aggregate(o, outcomes);
    expect(a.ratios[0]).toMatchObject({ ratio: 1.26, rounds: 15, generations: 3, interval: { low: Number(split?.low.toFixed(3)), high: Number(split?.high.toFixed(3)) } });
    expect(a.perWrite.interval).toEqual(a.ratios[0]?.interval);
    const report = buildReport({ options: o, outcomes, info: { sha: 'a', node: 'v', cpu: 'c', cores: 2, memoryGiB: 1, date: '2026-12-02T00:00:00.000Z' }, minutes: 1 });
    expect(report.markdown).toContain('95 % bootstrap interval over generations of clusters, then rounds');
    expect(report.markdown).toContain('4 nodes, random ids: clusters started afresh for each generation (1: rounds 1–5, 2: rounds 6–10, 3: rounds 11–15)');
    const summary = JSON.parse(report.stdout.trimEnd().split('\n').at(-1) as string) as { runs: { round: number; generation: number }[] };
    expect(summary.runs.map((r) => r.generation)).toEqual(outcomes.map((x) => Math.floor(x.round / 5)));
  });

  it('has no ratio for a configuration with a failed or unverified round, and leaves it out of the mean', () => {
    const o = opts(['--nodes', '2,3', '--ids', 'random', '--transports', 'plexus,nats-per-write', '--baseline', 'no']);
    const outcomes = outcomesOf(o, 2, (v, _n, r) => (v === 'plexus' ? 300 + r * 100 : 200)).map((x): ComparedOutcome => (x.nodes === 3 && x.transport === 'nats' && x.round === 1 ? ({ ...x, verified: false } as ComparedOutcome) : x));
    const a = aggregate(o, outcomes);
    expect(a.medianOf('plexus', { nodes: 2, ids: 'random' })).toBe(350);
    expect(a.medianOf('nats-per-write', { nodes: 3, ids: 'random' })).toBeUndefined();
    expect(a.ratios.map((r) => r.ratio)).toEqual([1.75, null]);
    expect(a.perWrite).toMatchObject({ mean: 1.75, std: 0, n: 1 });
    expect(a.batched).toMatchObject({ mean: null, std: null, n: 0 });
  });
});

describe('compare execution', () => {
  const fakeDeployment = (variant: Variant, log: string[]): Deployment => ({
    variant,
    urls: ['http://x:1'],
    source: 'local',
    pids: [],
    cpu: async () => ({ nodes: [0], brokers: [] }),
    peakRssMiB: async () => ({ nodes: [1], brokers: [] }),
    stop: async () => void log.push(`stop ${variant}`),
  });

  it('starts and warms one deployment per transport, runs rounds in rotated order, each in its own table, and stops them all', async () => {
    const log: string[] = [];
    const runner: Runner = {
      deploy: async (v) => (log.push(`deploy ${v}`), fakeDeployment(v, log)),
      warmUp: async (d, o) => void log.push(`warm ${d.variant} ${o.records}`),
      measure: async (d, o: RoundOptions) => (log.push(`${d.variant} ${o.table}`), run({ variant: d.variant, nodes: 2, ids: 'random' }, 100)),
      baseline: async (o) => (log.push(`baseline ${o.nodes}`), run({ variant: 'none', nodes: 1, ids: 'random' }, 50)),
      now: () => 0,
    };
    const o = opts(['--nodes', '2', '--ids', 'random', '--transports', 'plexus,nats-batched', '--rounds', '2', '--warmup', '7', '--baseline', 'yes']);
    const outcomes = await executePlan(buildPlan(o), o, silent, runner);
    expect(log).toEqual(['baseline 1', 'deploy plexus', 'warm plexus 7', 'deploy nats-batched', 'warm nats-batched 7', 'plexus c0r0', 'nats-batched c0r0', 'nats-batched c0r1', 'plexus c0r1', 'stop plexus', 'stop nats-batched']);
    expect(outcomes.map((x) => `${x.transport}/${x.round}`)).toEqual(['none/0', 'plexus/0', 'nats/0', 'nats/1', 'plexus/1']);
  });

  it('with a budget: rounds until it is spent, never fewer than 3 nor more than --rounds', async () => {
    let clock = 0;
    const measured: number[] = [];
    const runner: Runner = {
      deploy: async (v) => fakeDeployment(v, []),
      warmUp: async () => {},
      measure: async (d, o) => {
        clock += 10_000; // every run takes 10 s
        if (d.variant === 'plexus') measured.push(Number(o.table.split('r')[1]));
        return run({ variant: d.variant, nodes: 2, ids: 'random' }, 100);
      },
      baseline: async () => run({ variant: 'none', nodes: 1, ids: 'random' }, 50),
      now: () => clock,
    };
    const base = ['--nodes', '2', '--ids', 'random', '--transports', 'plexus,nats-batched', '--baseline', 'no'];
    for (const [budget, rounds, expected] of [['45', '40', 3], ['60', '40', 3], ['61', '40', 4], ['200', '5', 5]] as const) {
      measured.length = 0;
      clock = 0;
      const o = opts([...base, '--budget', budget, '--rounds', rounds]);
      await executePlan(buildPlan(o), o, silent, runner);
      expect(measured.length, `budget ${budget}`).toBe(expected);
    }
  });

  it('with generations: starts, warms and stops the cluster of every transport once per generation, and shares the rounds and the budget between them', async () => {
    const log: string[] = [];
    const tables: string[] = [];
    let clock = 0;
    const runner: Runner = {
      deploy: async (v) => (log.push(`deploy ${v}`), fakeDeployment(v, log)),
      warmUp: async (d, o) => {
        tables.push(`warmup${o.tag}`); // the table warmUp writes to
        log.push(`warm ${d.variant}`);
      },
      measure: async (d, o: RoundOptions) => {
        tables.push(o.table);
        clock += 5_000; // every run takes 5 s
        log.push(`${d.variant} ${o.table}`);
        return run({ variant: d.variant, nodes: 2, ids: 'random' }, 100);
      },
      baseline: async () => run({ variant: 'none', nodes: 1, ids: 'random' }, 50),
      now: () => clock,
    };
    const o = opts(['--nodes', '2', '--ids', 'random', '--transports', 'plexus,nats-batched', '--rounds', '4', '--generations', '2', '--baseline', 'no']);
    const outcomes = await executePlan(buildPlan(o), o, silent, runner);
    const generation = ['deploy plexus', 'warm plexus', 'deploy nats-batched', 'warm nats-batched'];
    const stop = ['stop plexus', 'stop nats-batched'];
    expect(log).toEqual([...generation, 'plexus c0r0', 'nats-batched c0r0', 'nats-batched c0r1', 'plexus c0r1', ...stop, ...generation, 'plexus c0r2', 'nats-batched c0r2', 'nats-batched c0r3', 'plexus c0r3', ...stop]);
    expect(outcomes.map((x) => `${x.round}/${x.generation}`)).toEqual(['0/0', '0/0', '1/0', '1/0', '2/1', '2/1', '3/1', '3/1']);
    // every table a node is asked to write is a valid table name, and no two generations share one
    for (const t of tables) expect(isTableName(t), t).toBe(true);
    expect(new Set(tables.filter((t) => t.startsWith('warmup'))).size).toBe(4);
    // a round takes 10 s: 25 s is 8.3 s a generation, 2 rounds each (the least a generation runs); 63 s is 21 s, 3 rounds
    for (const [budget, perGeneration] of [['25', 2], ['63', 3]] as const) {
      log.length = 0;
      const b = opts(['--nodes', '2', '--ids', 'random', '--transports', 'plexus,nats-batched', '--budget', budget, '--rounds', '40', '--generations', '3', '--baseline', 'no']);
      const xs = await executePlan(buildPlan(b), b, silent, runner);
      expect(log.filter((l) => l === 'deploy plexus')).toHaveLength(3);
      expect([0, 1, 2].map((g) => xs.filter((x) => x.generation === g && x.transport === 'plexus').length), `budget ${budget}`).toEqual([perGeneration, perGeneration, perGeneration]);
    }
  });

  it('records a deployment that fails to start, or a round that throws, as failed, ends that configuration, and still stops what started', async () => {
    const log: string[] = [];
    const seen: string[] = [];
    const progress: ProgressReporter = {
      update: (p, s: Progress) => seen.push(`${p.variant} ${p.round} ${s.phase}`),
      finished: (p) => seen.push(`${p.variant} ${p.round} finished`),
      failed: (p, failure) => seen.push(`${p.variant} ${p.round} failed: ${failure}`),
    };
    const runner: Runner = {
      deploy: async (v, nodes) => {
        if (nodes === 3 && v === 'nats-batched') throw new Error('no cluster');
        return fakeDeployment(v, log);
      },
      warmUp: async () => {},
      measure: async (d, o) => {
        if (o.table === 'c0r1' && d.variant === 'nats-batched') throw new Error('not replicated');
        return run({ variant: d.variant, nodes: 2, ids: 'random' }, 100);
      },
      baseline: async () => run({ variant: 'none', nodes: 1, ids: 'random' }, 50),
      now: () => 0,
    };
    const o = opts(['--nodes', '2,3', '--ids', 'random', '--transports', 'plexus,nats-batched', '--rounds', '3', '--baseline', 'no']);
    const outcomes = await executePlan(buildPlan(o), o, progress, runner);
    expect(outcomes.map((x) => `${x.transport}/${x.nodes}/${x.round}/${x.verified}`)).toEqual(['plexus/2/0/true', 'nats/2/0/true', 'nats/2/1/false', 'nats/3/0/false']);
    expect(outcomes[2]).toMatchObject({ transport: 'nats', mode: 'batched', errors: 1, verified: false, failure: 'not replicated', round: 1 });
    expect(seen.filter((s) => s.includes('failed'))).toEqual(['nats-batched 1 failed: not replicated', 'nats-batched 0 failed: no cluster']);
    expect(log).toEqual(['stop plexus', 'stop nats-batched', 'stop plexus']);
    expect(await executePlan([], o, silent, runner)).toEqual([]);
  });
});

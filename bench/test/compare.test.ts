import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster } from '@replica/cluster';
import { afterAll, describe, expect, it } from 'vitest';
import { barChartSvg } from '../src/svg.js';
import { mean, median, stddev } from '../src/stats.js';
import { REPORT_FORMAT } from '../src/compare/report.js';

const COMPARE = fileURLToPath(new URL('../dist/compare.js', import.meta.url));

describe('report helpers', () => {
  it('computes mean, sample standard deviation and median', () => {
    expect(mean([1.4, 1.6])).toBeCloseTo(1.5);
    expect(stddev([1.4, 1.6])).toBeCloseTo(0.1414, 3);
    expect(stddev([2])).toBe(0);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('draws one bar per series and group, escaping labels', () => {
    const svg = barChartSvg({ title: 'a <b>', series: ['x', 'y'], groups: [{ label: '4 nodes, random', values: [10, 0], note: '×2' }] });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('a &lt;b&gt;');
    expect(svg.match(/<rect [^>]*fill="#2b6cb0"><title>/g)).toHaveLength(1); // the zero value draws no bar
    expect(svg).toContain('n/a');
    expect(svg).toContain('>random<');
  });
});

interface Summary {
  runs: { transport: string; mode: string; nodes: number; ids: string; round: number; generation: number; records: number; acceptedPerSec: number; replicatedPerSec: number; cpuMsPerWrite: number | null; errors: number; verified: boolean }[];
  ratios: { nodes: number; ids: string; versus: string; ratio: number; interval: { low: number; high: number } | null; cpuRatio: number; rounds: number; generations: number }[];
  meanRatio: number;
  meanRatioInterval: { low: number; high: number } | null;
  meanCpuRatio: number;
  published: { mean: number; coversMean: boolean | null };
  breakdown: { variant: string; msPerWrite: Record<'http' | 'store' | 'transportSend' | 'transportReceive' | 'transportShared' | 'broker', number>; sum: number; total: number }[];
  report: string;
}

function compare(args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [COMPARE, ...args], { timeout: 240_000, maxBuffer: 16 * 2 ** 20 }, (err, so, se) => resolve({ stdout: so, stderr: se, code: err ? ((err as { code?: number }).code ?? 1) : 0 }));
  });
}

const summaryOf = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1) as string) as Summary;

describe('pnpm compare', () => {
  const out = mkdtempSync(join(tmpdir(), 'replica-compare-'));
  const clusters: Cluster[] = [];
  afterAll(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
    rmSync(out, { recursive: true, force: true });
  });

  it('runs rounds of every transport on two generations of clusters it starts, verifies them, explains their CPU, and ends with the JSON summary', async () => {
    // Rounds of 1,500 records: /proc counts CPU in 10 ms ticks per thread, and a node has
    // about a dozen threads, so the components (per thread) and the total (per process)
    // can differ by a tick per thread; on rounds this size that stays well under 10 %.
    const args = ['--nodes', '2', '--ids', 'random', '--records', '1500', '--warmup', '50', '--connections', '20', '--rounds', '4', '--generations', '2', '--baseline', 'no', '--explain', '--out', out];
    const { stdout, code } = await compare(args);
    const summary = summaryOf(stdout);
    expect(code, stdout).toBe(0);
    // rounds 0-1 on the first generation of clusters, 2-3 on the second; the order rotates on
    expect(summary.runs.map((r) => `${r.transport}/${r.mode}/${r.round}/${r.generation}`)).toEqual([
      'plexus/direct/0/0', 'nats/per-write/0/0', 'nats/batched/0/0',
      'nats/per-write/1/0', 'nats/batched/1/0', 'plexus/direct/1/0',
      'nats/batched/2/1', 'plexus/direct/2/1', 'nats/per-write/2/1',
      'plexus/direct/3/1', 'nats/per-write/3/1', 'nats/batched/3/1',
    ]);
    for (const r of summary.runs) {
      expect(r).toMatchObject({ nodes: 2, ids: 'random', records: 1500, errors: 0, verified: true });
      expect(r.replicatedPerSec).toBeGreaterThan(0);
      expect(r.cpuMsPerWrite).toBeGreaterThan(0);
    }
    expect(summary.ratios.map((r) => r.versus)).toEqual(['per-write', 'batched']);
    const speed = (mode: string, round: number) => summary.runs.find((r) => r.mode === mode && r.round === round)?.replicatedPerSec as number;
    const perRound = [0, 1, 2, 3].map((k) => speed('direct', k) / speed('per-write', k)).sort((a, b) => a - b);
    const pw = summary.ratios[0] as Summary['ratios'][0];
    expect(pw.ratio).toBeCloseTo(((perRound[1] as number) + (perRound[2] as number)) / 2, 2); // the median of the paired rounds
    expect(pw).toMatchObject({ rounds: 4, generations: 2 });
    expect(pw.interval?.low).toBeLessThanOrEqual(pw.ratio);
    expect(pw.interval?.high).toBeGreaterThanOrEqual(pw.ratio);
    expect(pw.cpuRatio).toBeGreaterThan(0);
    expect(summary.meanRatio).toBe(pw.ratio);
    expect(summary.published.coversMean).toBe(pw.interval ? pw.interval.low <= 1.51 && 1.51 <= pw.interval.high : null);
    // --explain: a breakdown per path whose components add up to what /proc measured
    expect(summary.breakdown.map((b) => b.variant)).toEqual(['plexus', 'nats-per-write', 'nats-batched']);
    for (const b of summary.breakdown) {
      expect(Math.abs(b.sum - b.total) / b.total, `${b.variant}: components ${b.sum} vs total ${b.total}`).toBeLessThanOrEqual(0.1);
      expect(b.msPerWrite.http + b.msPerWrite.store, b.variant).toBeGreaterThan(0);
      expect(b.msPerWrite.transportSend + b.msPerWrite.transportReceive + b.msPerWrite.transportShared, b.variant).toBeGreaterThan(0);
      if (b.variant === 'plexus') expect(b.msPerWrite.broker).toBe(0);
      else expect(b.msPerWrite.broker, b.variant).toBeGreaterThan(0);
    }
    const base = summary.report.replace(/\.md$/, '');
    for (const ext of ['.md', '.json', '.svg']) expect(existsSync(`${base}${ext}`), ext).toBe(true);
    const full = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { format: number; sha: string; node: string; runs: { cpuSec: { nodes: number[]; brokers: number[] } }[] };
    expect(full.format).toBe(REPORT_FORMAT);
    expect(full.node).toBe(process.version);
    expect(full.runs[1]?.cpuSec.brokers).toHaveLength(2); // every nats-server measured
    expect(readFileSync(`${base}.md`, 'utf8')).toMatch(/plexus \/ per-write \[95 % CI\]/);
  });

  it('--urls: measures deployments it did not start, reading their transport and mode from /status', async () => {
    clusters.push(await startCluster({ nodes: 2, transport: 'plexus' }), await startCluster({ nodes: 2, transport: 'nats', natsMode: 'batched' }));
    const [plexus, nats] = clusters as [Cluster, Cluster];
    const urls = (c: Cluster) => c.nodes.map((n) => n.url).join(',');
    const { stdout, stderr, code } = await compare(['--urls', urls(plexus), '--urls', urls(nats), '--ids', 'random', '--records', '300', '--warmup', '30', '--connections', '10', '--rounds', '3', '--out', out]);
    expect(code, stderr).toBe(0);
    const summary = summaryOf(stdout);
    expect(summary.runs.map((r) => `${r.mode}/${r.round}`)).toEqual(['direct/0', 'batched/0', 'batched/1', 'direct/1', 'direct/2', 'batched/2']);
    for (const r of summary.runs) expect(r).toMatchObject({ nodes: 2, records: 300, errors: 0, verified: true });
    expect(summary.ratios).toMatchObject([{ nodes: 2, versus: 'batched', rounds: 3 }]);
    expect(stdout).toContain(`running deployments ${urls(plexus)} and ${urls(nats)}`);
    // the deployments are left running, and hold the rounds' tables
    const status = (await (await fetch(`${plexus.nodes[1]?.url}/status`)).json()) as { tables: Record<string, { count: number }> };
    expect(Object.entries(status.tables).filter(([t]) => /^cx[0-9a-z]+_0r\d$/.test(t)).map(([, v]) => v.count)).toEqual([300, 300, 300]);
  });

  it('--urls: refuses a node it cannot reach, and two deployments of one path, with exit code 2', async () => {
    const [plexus] = clusters as [Cluster];
    const unreachable = await compare(['--urls', 'http://127.0.0.1:9', '--out', out]);
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/^compare: http:\/\/127\.0\.0\.1:9: unreachable/);
    const same = await compare(['--urls', plexus.nodes[0]?.url as string, '--urls', plexus.nodes[1]?.url as string, '--out', out]);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/two deployments run the same transport and mode \(plexus, plexus\)/);
  });

  it('refuses bad options with a usage message and exit code 2', async () => {
    const { stderr, code } = await compare(['--nodes', 'four', '--out', out]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--nodes must be integers/);
  });
});

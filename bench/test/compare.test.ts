import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { barChartSvg } from '../src/svg.js';
import { mean, median, stddev } from '../src/stats.js';

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

describe('pnpm compare', () => {
  const out = mkdtempSync(join(tmpdir(), 'replica-compare-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs every transport on fresh clusters, verifies them, and ends with the JSON summary', async () => {
    const args = ['--nodes', '2', '--ids', 'random', '--records', '400', '--warmup', '50', '--connections', '20', '--baseline', 'no', '--out', out];
    const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve) => {
      execFile(process.execPath, [COMPARE, ...args], { timeout: 240_000, maxBuffer: 16 * 2 ** 20 }, (err, so) => resolve({ stdout: so, code: err ? ((err as { code?: number }).code ?? 1) : 0 }));
    });
    const last = stdout.trim().split('\n').at(-1) as string;
    const summary = JSON.parse(last) as {
      runs: { transport: string; mode: string; nodes: number; ids: string; records: number; acceptedPerSec: number; replicatedPerSec: number; errors: number; verified: boolean }[];
      ratios: { nodes: number; ids: string; versus: string; ratio: number }[];
      meanRatio: number;
      stdRatio: number;
      report: string;
    };
    expect(code, stdout).toBe(0);
    expect(summary.runs.map((r) => `${r.transport}/${r.mode}`)).toEqual(['plexus/direct', 'nats/per-write', 'nats/batched']);
    for (const r of summary.runs) {
      expect(r).toMatchObject({ nodes: 2, ids: 'random', records: 400, errors: 0, verified: true });
      expect(r.replicatedPerSec).toBeGreaterThan(0);
      expect(r.acceptedPerSec).toBeGreaterThan(0);
    }
    expect(summary.ratios.map((r) => r.versus)).toEqual(['per-write', 'batched']);
    const plexus = summary.runs[0]?.replicatedPerSec as number;
    expect(summary.ratios[0]?.ratio).toBeCloseTo(plexus / (summary.runs[1]?.replicatedPerSec as number), 2);
    expect(summary.meanRatio).toBe(summary.ratios[0]?.ratio);
    expect(summary.stdRatio).toBe(0);
    const base = summary.report.replace(/\.md$/, '');
    for (const ext of ['.md', '.json', '.svg']) expect(existsSync(`${base}${ext}`), ext).toBe(true);
    const full = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { sha: string; node: string; cpu: string; runs: { cpuSec: { nodes: number[]; brokers: number[] } }[] };
    expect(full.node).toBe(process.version);
    expect(full.runs[1]?.cpuSec.brokers).toHaveLength(2); // every nats-server measured
    expect(readFileSync(`${base}.md`, 'utf8')).toMatch(/plexus \/ per-write/);
  });

  it('refuses bad options with a usage message and exit code 2', async () => {
    const { stderr, code } = await new Promise<{ stderr: string; code: number | null }>((resolve) => {
      execFile(process.execPath, [COMPARE, '--nodes', 'four', '--out', out], (err, _so, se) => resolve({ stderr: se, code: err ? ((err as { code?: number }).code ?? 1) : 0 }));
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/--nodes must be integers/);
  });
});

// `pnpm compare:ab --before DIR`: the same `pnpm compare` run from two built checkouts
// (another commit in DIR, and this one), in alternating rounds within one session, so
// that a change's effect on throughput and CPU is read as a same-run ratio rather than
// against figures from another hour. Every argument after `--` goes to compare (default
// `--quick`). stdout: one table per transport and mode, then ONE JSON summary line.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCli } from '@replica/transport-api/cli';
import { median } from './stats.js';

const USAGE = 'usage: pnpm compare:ab --before DIR [--after DIR] [--rounds 2] [-- compare arguments (default --quick)]';

interface RunFigures {
  readonly transport: string;
  readonly mode: string;
  readonly nodes: number;
  readonly ids: string;
  readonly replicatedPerSec: number;
  readonly verified: boolean;
  readonly cpuSecPer1kWrites: { readonly nodes: number; readonly brokers: number };
}

interface Side {
  readonly label: 'before' | 'after';
  readonly dir: string;
  readonly sha: string[];
  readonly runs: RunFigures[];
}

/** Runs `compare` of checkout `dir` once; resolves with its runs (from the report's JSON) and the commit it names. */
function runCompare(dir: string, args: readonly string[], out: string): Promise<{ sha: string; runs: RunFigures[] }> {
  const script = join(dir, 'bench', 'dist', 'compare.js');
  return new Promise((done, fail) => {
    execFile(process.execPath, [script, ...args, '--out', out], { maxBuffer: 64 * 2 ** 20, cwd: dir }, (err, stdout, stderr) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      let summary: { sha: string; report: string };
      try {
        summary = JSON.parse(last) as { sha: string; report: string };
      } catch {
        return fail(new Error(`compare in ${dir} ended without its summary line (${err?.message ?? 'no error'}): ${stderr.slice(-2000)}`));
      }
      const full = JSON.parse(readFileSync(summary.report.replace(/\.md$/, '.json'), 'utf8')) as { runs: RunFigures[] };
      done({ sha: summary.sha, runs: full.runs });
    });
  });
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<number> {
  const parsed = parseCli<{ before?: string; after: string; rounds: string }>({
    name: 'compare:ab',
    usage: USAGE,
    packageJson: new URL('../package.json', import.meta.url),
    allowPositionals: true,
    options: {
      before: { type: 'string' },
      after: { type: 'string', default: fileURLToPath(new URL('../..', import.meta.url)) },
      rounds: { type: 'string', default: '2' },
    },
  });
  const values = parsed.values;
  const positionals = [...parsed.positionals];
  const rounds = Number(values.rounds);
  if (values.before === undefined || !Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write(`compare:ab: --before DIR is required and --rounds must be a positive integer\n${USAGE}\n`);
    return 2;
  }
  const compareArgs = positionals.length > 0 ? positionals : ['--quick'];
  const sides: Side[] = [
    { label: 'before', dir: resolve(values.before), sha: [], runs: [] },
    { label: 'after', dir: resolve(values.after), sha: [], runs: [] },
  ];
  const out = mkdtempSync(join(tmpdir(), 'replica-ab-'));
  try {
    for (let r = 0; r < rounds; r++) {
      // before, after; then after, before: neither side always runs on a fresher machine
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
        process.stderr.write(`compare:ab: round ${r + 1}/${rounds}, ${side.label} (${side.dir})\n`);
        const { sha, runs } = await runCompare(side.dir, compareArgs, join(out, `${side.label}-${r}`));
        side.sha.push(sha);
        side.runs.push(...runs);
      }
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }

  const key = (r: RunFigures) => `${r.transport} ${r.mode}, ${r.nodes} nodes, ${r.ids} ids`;
  const keys = [...new Set(sides.flatMap((s) => s.runs.map(key)))];
  const rows = keys.map((k) => {
    const of = (s: Side) => s.runs.filter((r) => key(r) === k);
    const [b, a] = [of(sides[0] as Side), of(sides[1] as Side)];
    const rate = (rs: RunFigures[]) => median(rs.map((r) => r.replicatedPerSec));
    const cpus = (rs: RunFigures[]) => rs.map((r) => Number((r.cpuSecPer1kWrites.nodes + r.cpuSecPer1kWrites.brokers).toFixed(3)));
    const side = (rs: RunFigures[]) => ({ replicatedPerSec: rs.map((r) => r.replicatedPerSec), cpuSecPer1k: cpus(rs), verified: rs.every((r) => r.verified) });
    return { run: k, before: side(b), after: side(a), ratio: rate(a) / rate(b), cpuRatio: median(cpus(a)) / median(cpus(b)) };
  });
  const lines = [
    `before: ${sides[0]?.dir} (${[...new Set(sides[0]?.sha)].join(', ')}); after: ${sides[1]?.dir} (${[...new Set(sides[1]?.sha)].join(', ')}); ${rounds} alternating rounds of compare ${compareArgs.join(' ')}`,
    '',
    '| run | before replicated/s | after replicated/s | after/before (medians) | CPU s per 1k writes, before → after |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.run} | ${r.before.replicatedPerSec.map((x) => fmt(x)).join(', ')} | ${r.after.replicatedPerSec.map((x) => fmt(x)).join(', ')} | ${fmt(r.ratio, 3)} | ${r.before.cpuSecPer1k.map((x) => fmt(x, 3)).join(', ')} → ${r.after.cpuSecPer1k.map((x) => fmt(x, 3)).join(', ')} (medians ×${fmt(r.cpuRatio, 3)}) |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n${JSON.stringify({ rounds, compareArgs, sha: { before: sides[0]?.sha, after: sides[1]?.sha }, rows })}\n`);
  const allVerified = rows.every((r) => r.before.verified && r.after.verified);
  return allVerified ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`compare:ab: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

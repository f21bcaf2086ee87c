// `pnpm compare`: the published 4.3 → 4.4 replicated-write comparison, side by side on
// this machine. For every cluster size and key mode it runs the same load on fresh
// clusters of plexus, nats per-write (the 4.3 shape) and nats batched, verifies that
// every node holds every record with one digest, and reports the plexus/nats ratios.
// stderr: a live progress line. stdout: the tables, then ONE JSON summary line (last).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stopAllClusters } from '@replica/cluster';
import { modeOf, runCluster, transportOf, variantOf, VARIANTS, type Progress, type Run, type Variant } from './cluster-run.js';
import { machineInfo } from './env-info.js';
import type { IdMode } from './records.js';
import { barChartSvg } from './svg.js';
import { mean, median, stddev } from './stats.js';

const USAGE = `usage: pnpm compare [--quick] [--nodes 4,5,6,8] [--ids random,sequential]
       [--transports plexus,nats-per-write,nats-batched] [--records 24000] [--warmup 3000]
       [--connections 500] [--rounds 1] [--baseline yes|no] [--out bench/results]`;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    nodes: { type: 'string' },
    ids: { type: 'string' },
    transports: { type: 'string', default: 'plexus,nats-per-write,nats-batched' },
    records: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '1' },
    baseline: { type: 'string' },
    out: { type: 'string', default: fileURLToPath(new URL('../results', import.meta.url)) },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

function fail(message: string): never {
  process.stderr.write(`compare: ${message}\n${USAGE}\n`);
  process.exit(2);
}
function positiveInts(name: string, text: string, min: number): number[] {
  const xs = text.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < min)) fail(`--${name} must be integers ≥ ${min}, comma-separated (got "${text}")`);
  return xs;
}

// --quick: 4 nodes, random ids, every transport, small counts: about a minute.
const quick = args.quick;
const nodeCounts = positiveInts('nodes', args.nodes ?? (quick ? '4' : '4,5,6,8'), 2);
const idModes = (args.ids ?? (quick ? 'random' : 'random,sequential')).split(',') as IdMode[];
for (const m of idModes) if (m !== 'random' && m !== 'sequential') fail(`--ids: unknown "${m}" (random or sequential)`);
const variants = args.transports.split(',') as Variant[];
for (const v of variants) if (!VARIANTS.includes(v) || v === 'none') fail(`--transports: unknown "${v}" (plexus, nats-per-write, nats-batched)`);
if (!variants.includes('plexus')) fail('--transports must include plexus: every ratio is plexus against a nats mode');
const [records] = positiveInts('records', args.records ?? (quick ? '16000' : '24000'), 1);
const [warmup] = positiveInts('warmup', args.warmup ?? '3000', 0);
const [connections] = positiveInts('connections', args.connections, 1);
const [rounds] = positiveInts('rounds', args.rounds, 1);
const baseline = (args.baseline ?? (quick ? 'no' : 'yes')) === 'yes';

interface Config {
  readonly nodes: number;
  readonly ids: IdMode;
}
const configs: Config[] = idModes.flatMap((ids) => nodeCounts.map((nodes) => ({ nodes, ids })));

/** Every run, in order: per key mode an optional single-node baseline, then per config and round every variant, rotated so none always goes first. */
const plan: { variant: Variant; nodes: number; ids: IdMode }[] = [];
for (const ids of idModes) {
  if (baseline) plan.push({ variant: 'none', nodes: 1, ids });
  for (const c of configs.filter((x) => x.ids === ids)) {
    for (let r = 0; r < (rounds as number); r++) {
      for (let k = 0; k < variants.length; k++) plan.push({ variant: variants[(k + r) % variants.length] as Variant, nodes: c.nodes, ids });
    }
  }
}

// ------------------------------------------------------------------ live progress

const tty = process.stderr.isTTY === true;
let lastLine = 0;
function progress(i: number, p: { variant: Variant; nodes: number; ids: IdMode }, s: Progress): void {
  const what = `[${i + 1}/${plan.length}] ${p.variant} · ${p.nodes} node${p.nodes > 1 ? 's' : ''} · ${p.ids} ids`;
  const detail =
    s.phase === 'load' || s.phase === 'replicating'
      ? `${s.phase} · on one node ${s.most.toLocaleString('en')} · on every node ${s.everywhere.toLocaleString('en')} of ${(records as number).toLocaleString('en')}`
      : s.phase;
  const line = `${what} · ${s.elapsedSec.toFixed(0)} s · ${detail}`;
  if (tty) process.stderr.write(`\r\x1b[K${line}`);
  else if (Date.now() - lastLine >= 5000 || s.phase === 'starting') {
    lastLine = Date.now();
    process.stderr.write(`${line}\n`);
  }
}

// ------------------------------------------------------------------ stop cleanly

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\ncompare: ${sig}, stopping the running cluster…\n`);
    const force = setTimeout(() => process.exit(130), 15_000);
    void stopAllClusters().finally(() => {
      clearTimeout(force);
      process.exit(130);
    });
  });
}

// ------------------------------------------------------------------ run

interface Failed {
  readonly transport: string;
  readonly mode: string;
  readonly nodes: number;
  readonly ids: IdMode;
  readonly records: 0;
  readonly acceptedPerSec: 0;
  readonly replicatedPerSec: 0;
  readonly errors: number;
  readonly verified: false;
  readonly failure: string;
}
type Outcome = Run | Failed;
const isRun = (o: Outcome): o is Run => !('failure' in o);

const startedAt = Date.now();
const outcomes: (Outcome & { round: number })[] = [];
const roundOf = new Map<string, number>();
for (const [i, p] of plan.entries()) {
  const key = `${p.variant}/${p.nodes}/${p.ids}`;
  const round = roundOf.get(key) ?? 0;
  roundOf.set(key, round + 1);
  try {
    const run = await runCluster({ ...p, records: records as number, warmup: warmup as number, connections: connections as number, tag: `${i}`, onProgress: (s) => progress(i, p, s) });
    outcomes.push({ ...run, round });
    const line = `[${i + 1}/${plan.length}] ${p.variant} · ${p.nodes} nodes · ${p.ids}: accepted ${run.acceptedPerSec}/s, replicated ${run.replicatedPerSec}/s, errors ${run.errors}, ${run.verified ? 'verified' : 'NOT VERIFIED'}`;
    process.stderr.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  } catch (err) {
    const failure = err instanceof Error ? err.message : String(err);
    outcomes.push({ transport: transportOf(p.variant), mode: modeOf(p.variant), nodes: p.nodes, ids: p.ids, records: 0, acceptedPerSec: 0, replicatedPerSec: 0, errors: 1, verified: false, failure, round });
    process.stderr.write(`${tty ? '\r\x1b[K' : ''}[${i + 1}/${plan.length}] ${p.variant} · ${p.nodes} nodes · ${p.ids}: FAILED: ${failure}\n`);
  }
}
const minutes = (Date.now() - startedAt) / 60_000;

// ------------------------------------------------------------------ aggregate

/** Median replicated/s of a variant in a configuration over its rounds (undefined if any round failed). */
function medianOf(variant: Variant, c: Config, field: 'replicatedPerSec' | 'acceptedPerSec' = 'replicatedPerSec'): number | undefined {
  const xs = outcomes.filter((o) => variantOf(o as Run) === variant && o.nodes === c.nodes && o.ids === c.ids);
  if (xs.length === 0 || xs.some((o) => !isRun(o) || !o.verified)) return undefined;
  return median(xs.map((o) => o[field]));
}

const versusModes = variants.filter((v) => v !== 'plexus').map((v) => v.slice(5));
const ratios: { nodes: number; ids: IdMode; versus: string; ratio: number | null }[] = [];
for (const c of configs) {
  const plexus = medianOf('plexus', c);
  for (const mode of versusModes) {
    const nats = medianOf(`nats-${mode}` as Variant, c);
    ratios.push({ nodes: c.nodes, ids: c.ids, versus: mode, ratio: plexus !== undefined && nats ? Number((plexus / nats).toFixed(3)) : null });
  }
}
const ratioStats = (mode: string) => {
  const xs = ratios.filter((r) => r.versus === mode && r.ratio !== null).map((r) => r.ratio as number);
  return { mean: xs.length ? Number(mean(xs).toFixed(3)) : null, std: xs.length ? Number(stddev(xs).toFixed(3)) : null, n: xs.length };
};
const perWrite = ratioStats('per-write');
const batched = ratioStats('batched');

// ------------------------------------------------------------------ report

const info = machineInfo();
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const pct = (r: number | null) => (r === null ? '–' : `${r.toFixed(2)} (${r >= 1 ? '+' : ''}${Math.round((r - 1) * 100)} %)`);

const runTable = [
  '| transport | mode | nodes | ids | round | accepted/s | **replicated/s** | POST p50 / p99 ms | lag p50 / p99 ms | entries per frame or message | CPU s per 1k writes: nodes + brokers (loadgen) | peak RSS MiB: nodes; brokers | errors | verified |',
  '|---|---|---:|---|---:|---:|---:|---|---|---:|---|---|---:|---|',
  ...outcomes.map((o) =>
    isRun(o)
      ? `| ${o.transport} | ${o.mode} | ${o.nodes} | ${o.ids} | ${o.round + 1} | ${fmt(o.acceptedPerSec)} | **${fmt(o.replicatedPerSec)}** | ${o.postP50Ms} / ${o.postP99Ms} | ${o.lagP50Ms} / ${o.lagP99Ms} | ${o.entriesPerFrame} | ${o.cpuSecPer1kWrites.nodes} + ${o.cpuSecPer1kWrites.brokers} (${o.cpuSecPer1kWrites.loadgen}) | ${o.peakRssMiB.nodes.join(', ')}${o.peakRssMiB.brokers.length ? `; ${o.peakRssMiB.brokers.join(', ')}` : ''} | ${o.errors} | ${o.verified ? 'yes' : '**NO**'} |`
      : `| ${o.transport} | ${o.mode} | ${o.nodes} | ${o.ids} | ${o.round + 1} | – | – | – | – | – | – | – | ${o.errors} | **FAILED**: ${o.failure.replaceAll('|', '/').slice(0, 200)} |`,
  ),
].join('\n');

const ratioTable = [
  `| nodes | ids | plexus replicated/s | ${versusModes.map((m) => `nats ${m} replicated/s`).join(' | ')} | ${versusModes.map((m) => `plexus / ${m}`).join(' | ')} |`,
  `|---:|---|---:|${versusModes.map(() => '---:|').join('')}${versusModes.map(() => '---:|').join('')}`,
  ...configs.map((c) => {
    const p = medianOf('plexus', c);
    const n = versusModes.map((m) => medianOf(`nats-${m}` as Variant, c));
    const rs = versusModes.map((m) => ratios.find((r) => r.nodes === c.nodes && r.ids === c.ids && r.versus === m)?.ratio ?? null);
    return `| ${c.nodes} | ${c.ids} | ${p === undefined ? '–' : fmt(p)} | ${n.map((x) => (x === undefined ? '–' : fmt(x))).join(' | ')} | ${rs.map(pct).join(' | ')} |`;
  }),
].join('\n');

const statsLines = [
  `plexus / nats per-write: mean ${perWrite.mean ?? '–'}, standard deviation ${perWrite.std ?? '–'} over ${perWrite.n} configuration(s)${versusModes.includes('per-write') ? '' : ' (not run)'}`,
  `plexus / nats batched:   mean ${batched.mean ?? '–'}, standard deviation ${batched.std ?? '–'} over ${batched.n} configuration(s)${versusModes.includes('batched') ? '' : ' (not run)'}`,
  'published (Harper 4.3 → 4.4, 4/5/6/8 nodes): mean 1.51, standard deviation 0.09, one outlier (2.21) removed',
];

const baselineLines = idModes.flatMap((ids) => {
  const base = outcomes.find((o) => o.transport === 'none' && o.ids === ids);
  if (!base || !isRun(base)) return [];
  return configs
    .filter((c) => c.ids === ids)
    .map((c) => {
      const p = medianOf('plexus', c);
      return `single-node ingest (${ids} ids) ${fmt(base.replicatedPerSec)}/s; plexus at ${c.nodes} nodes: ${p === undefined ? '–' : `${fmt(p)}/s = ${Math.round((p / base.replicatedPerSec) * 100)} %`}`;
    });
});

const header = `Replica compare — ${info['date']}, sha ${info['sha']}, ${info['cpu']} (${info['cores']} cores), Node ${info['node']}; ${connections} connections, ${records} records per run (+${warmup} warm-up), ${rounds} round(s); took ${minutes.toFixed(1)} min`;
mkdirSync(args.out, { recursive: true });
const stamp = String(info['date']).replace(/[:.]/g, '-');
const base = `compare-${stamp}`;

const chartGroups = configs.map((c) => {
  const r = ratios.find((x) => x.nodes === c.nodes && x.ids === c.ids && x.versus === 'per-write')?.ratio;
  return { label: `${c.nodes} nodes, ${c.ids}`, values: variants.map((v) => medianOf(v, c) ?? 0), ...(r ? { note: `×${r.toFixed(2)} vs per-write` } : {}) };
});
const svg = barChartSvg({
  title: `Replicated writes/s, plexus vs nats (median of ${rounds} round${rounds === 1 ? '' : 's'})`,
  subtitle: `sha ${info['sha']} · ${String(info['date']).slice(0, 16)} · ${info['cpu']}, ${info['cores']} cores · ${connections} connections, ${records} records per run`,
  series: variants.map((v) => (v === 'plexus' ? 'plexus (direct mTLS)' : `nats ${v.slice(5)}`)),
  groups: chartGroups,
});
writeFileSync(join(args.out, `${base}.svg`), svg);

const markdown = [
  `# ${header}`,
  '',
  `![replicated writes/s](${base}.svg)`,
  '',
  '## Ratios (median replicated/s per configuration)',
  '',
  ratioTable,
  '',
  ...statsLines.map((l) => `- ${l}`),
  ...baselineLines.map((l) => `- ${l}`),
  '',
  '## Every run',
  '',
  runTable,
  '',
  'replicated/s: records ÷ seconds from the first request until every node held every record with one digest. ' +
    'verified: every node ended with exactly the acknowledged records and the same digest, with 0 errors. ' +
    'Lag: origin write → commit on the receiving node, all nodes together. CPU: measured phase only, from /proc.',
  '',
].join('\n');
writeFileSync(join(args.out, `${base}.md`), markdown);

const full = {
  benchmark: 'compare',
  ...info,
  options: { nodes: nodeCounts, ids: idModes, transports: variants, records, warmup, connections, rounds, baseline, quick },
  minutes: Number(minutes.toFixed(2)),
  runs: outcomes,
  ratios,
  ratioStats: { 'per-write': perWrite, batched },
};
writeFileSync(join(args.out, `${base}.json`), `${JSON.stringify(full, null, 2)}\n`);

const summary = {
  runs: outcomes.map((o) => ({
    transport: o.transport,
    mode: o.mode,
    nodes: o.nodes,
    ids: o.ids,
    records: o.records,
    acceptedPerSec: o.acceptedPerSec,
    replicatedPerSec: o.replicatedPerSec,
    errors: o.errors,
    verified: o.verified,
  })),
  ratios,
  meanRatio: perWrite.mean,
  stdRatio: perWrite.std,
  meanRatioBatched: batched.mean,
  stdRatioBatched: batched.std,
  sha: info['sha'],
  report: join(args.out, `${base}.md`),
};
process.stdout.write(
  [
    '',
    header,
    '',
    ratioTable,
    '',
    ...statsLines,
    ...baselineLines,
    '',
    runTable,
    '',
    `report: ${join(args.out, `${base}.md`)} (chart ${base}.svg, data ${base}.json)`,
    JSON.stringify(summary),
    '',
  ].join('\n'),
);
if (outcomes.some((o) => o.errors > 0 || !o.verified)) process.exitCode = 1;

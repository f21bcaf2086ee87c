// What `pnpm compare` reports: the markdown report, the full JSON data, the SVG chart
// (files named after the date, stamped with the git sha and the machine), and the
// stdout text that ends with the one-line JSON summary.
import { basename } from 'node:path';
import { isRun, type Variant } from '../cluster-run.js';
import { machineLine, type MachineInfo } from '../env-info.js';
import { resultsBase, writeResults } from '../results-files.js';
import { formatCount, runTable } from '../run-table.js';
import { COMPONENT_LABELS, COMPONENTS, type Breakdown } from '../explain.js';
import { barChartSvg, stackedBarSvg, stackSvg } from '../svg.js';
import { aggregate, againstPublished, PUBLISHED, type Bounds, type RatioStats } from './aggregate.js';
import type { CompareOptions } from './args.js';
import { generationOf, type ComparedOutcome } from './execute.js';

/** The layout of the JSON data; a stored result of an earlier format is kept as measured, not re-rendered. */
export const REPORT_FORMAT = 3;

export interface ReportInput {
  readonly options: CompareOptions;
  readonly outcomes: readonly ComparedOutcome[];
  /** Measured after the last run: its date names the files. */
  readonly info: MachineInfo;
  /** Wall-clock minutes of all runs. */
  readonly minutes: number;
}

export interface CompareReport {
  /** Paths of the files, without their extension (`<out>/compare-<date>`). */
  readonly base: string;
  readonly markdown: string;
  readonly svg: string;
  /** Every figure of every run, with the options and the machine. */
  readonly json: string;
  /** Header, tables, where the report went, and last the JSON summary line. */
  readonly stdout: string;
}

const pct = (r: number | null) => (r === null ? '–' : `${r.toFixed(2)} (${r >= 1 ? '+' : ''}${Math.round((r - 1) * 100)} %)`);
const ci = (b: Bounds) => (b ? ` [${b.low.toFixed(2)}–${b.high.toFixed(2)}]` : '');
const variantName = (v: Variant) => (v === 'plexus' ? 'plexus' : `nats ${v.slice(5)}`);

/** The sentence on where an interval lies against the published 1.51 ± 0.09. */
function publishedSentence(what: string, b: Bounds): string {
  const p = `the published ${PUBLISHED.mean} ± ${PUBLISHED.std}`;
  const check = againstPublished(b);
  if (!b || !check) return `${what}: no interval (fewer than 3 paired rounds), so no comparison with ${p}`;
  const range = `95 % interval ${b.low.toFixed(2)}–${b.high.toFixed(2)}`;
  if (check.coversMean) return `${what}: the ${range} covers ${p}`;
  if (check.overlapsRange) return `${what}: the ${range} does not cover ${PUBLISHED.mean} but overlaps ${p}`;
  return `${what}: the ${range} lies entirely ${b.high < PUBLISHED.mean ? 'below' : 'above'} ${p}`;
}

const statsLine = (name: string, s: RatioStats, ran: boolean) =>
  `plexus / nats ${name}: mean ${s.mean ?? '–'}${ci(s.interval)}, standard deviation ${s.std ?? '–'} over ${s.n} configuration(s); CPU per write, nats ${name} ÷ plexus: ${s.cpuMean ?? '–'}${ci(s.cpuInterval)}${ran ? '' : ' (not run)'}`;

/**
 * Renders the report of a finished comparison. Pure: the same input gives the same
 * bytes, which is what lets results of different commits be compared.
 */
export function buildReport({ options: o, outcomes, info, minutes }: ReportInput): CompareReport {
  const { configs, versusModes, ratios, perWrite, batched, medianOf, cpuOf, ratioOf, breakdownOf } = aggregate(o, outcomes);
  const explained = configs.flatMap((c) => o.transports.flatMap((v) => {
    const b = breakdownOf(v, c);
    return b ? [{ nodes: c.nodes, ids: c.ids, variant: v, ...b }] : [];
  }));
  const within = (b: Breakdown) => b.total > 0 && Math.abs(b.sum - b.total) / b.total <= 0.1;
  const breakdownTables = configs.flatMap((c) => {
    const rows = explained.filter((e) => e.nodes === c.nodes && e.ids === c.ids);
    if (rows.length === 0) return [];
    return [
      `### ${c.nodes} nodes, ${c.ids} ids: CPU ms per replicated write by component (median over rounds)`,
      '',
      `| component | ${rows.map((r) => variantName(r.variant)).join(' | ')} |`,
      `|---|${rows.map(() => '---:|').join('')}`,
      ...COMPONENTS.map((k) => `| ${COMPONENT_LABELS[k]} | ${rows.map((r) => r.msPerWrite[k].toFixed(3)).join(' | ')} |`),
      `| **sum of the components** | ${rows.map((r) => `**${r.sum.toFixed(3)}**`).join(' | ')} |`,
      `| measured for the processes (/proc) | ${rows.map((r) => `${r.total.toFixed(3)}${within(r) ? '' : ' (off by more than 10 %)'}`).join(' | ')} |`,
      '',
    ];
  });
  const roundsRun = (c: { nodes: number; ids: string }) => new Set(outcomes.filter((x) => x.nodes === c.nodes && x.ids === c.ids && x.transport !== 'none').map((x) => x.round)).size;
  const everyRun = runTable(outcomes, { round: true });

  const ratioTable = [
    `| nodes | ids | rounds | ${o.transports.map((v) => `${variantName(v)} replicated/s`).join(' | ')} | ${versusModes.map((m) => `plexus / ${m} [95 % CI]`).join(' | ')} |`,
    `|---:|---|---:|${o.transports.map(() => '---:|').join('')}${versusModes.map(() => '---:|').join('')}`,
    ...configs.map((c) => {
      const v = o.transports.map((t) => medianOf(t, c));
      const rs = versusModes.map((m) => ratioOf(c, m));
      return `| ${c.nodes} | ${c.ids} | ${roundsRun(c)} | ${v.map((x) => (x === undefined ? '–' : formatCount(x))).join(' | ')} | ${rs.map((r) => `${pct(r?.ratio ?? null)}${ci(r?.interval ?? null)}`).join(' | ')} |`;
    }),
  ].join('\n');

  const cpuTable = [
    `| nodes | ids | ${o.transports.map((v) => `${variantName(v)} CPU ms per write`).join(' | ')} | ${versusModes.map((m) => `${m} ÷ plexus [95 % CI]`).join(' | ')} |`,
    `|---:|---|${o.transports.map(() => '---:|').join('')}${versusModes.map(() => '---:|').join('')}`,
    ...configs.map((c) => {
      const v = o.transports.map((t) => cpuOf(t, c));
      const rs = versusModes.map((m) => ratioOf(c, m));
      return `| ${c.nodes} | ${c.ids} | ${v.map((x) => (x === undefined ? '–' : x.toFixed(3))).join(' | ')} | ${rs.map((r) => (r?.cpuRatio == null ? '–' : `${r.cpuRatio.toFixed(2)}${ci(r.cpuInterval)}`)).join(' | ')} |`;
    }),
  ].join('\n');

  const perWriteBounds = configs.length === 1 ? (ratioOf(configs[0] as (typeof configs)[0], 'per-write')?.interval ?? null) : perWrite.interval;
  const statsLines = [
    statsLine('per-write', perWrite, versusModes.includes('per-write')),
    statsLine('batched', batched, versusModes.includes('batched')),
    `published (Harper 4.3 → 4.4, 4/5/6/8 nodes): mean ${PUBLISHED.mean}, standard deviation ${PUBLISHED.std}, one outlier (2.21) removed`,
    ...(versusModes.includes('per-write') ? [publishedSentence(configs.length === 1 ? 'plexus / nats per-write' : 'mean plexus / nats per-write', perWriteBounds)] : []),
  ];

  const baselineLines = o.ids.flatMap((ids) => {
    const single = outcomes.find((x) => x.transport === 'none' && x.ids === ids);
    if (!single || !isRun(single)) return [];
    return configs
      .filter((c) => c.ids === ids)
      .map((c) => {
        const p = medianOf('plexus', c);
        return `single-node ingest (${ids} ids) ${formatCount(single.replicatedPerSec)}/s; plexus at ${c.nodes} nodes: ${p === undefined ? '–' : `${formatCount(p)}/s = ${Math.round((p / single.replicatedPerSec) * 100)} %`}`;
      });
  });

  const roundsText =
    (o.budgetSec === null ? `${o.rounds} round(s)` : `rounds for ${o.budgetSec} s (${Math.min(...configs.map(roundsRun))}–${Math.max(...configs.map(roundsRun))})`) +
    (o.generations > 1 ? ` on ${o.generations} generations of clusters` : '');
  // which rounds each generation ran, where there were several
  const generationLines =
    o.generations > 1
      ? configs.map((c) => {
          // per generation, its first and last round
          const spans = new Map<number, { first: number; last: number }>();
          for (const x of outcomes) {
            if (x.nodes !== c.nodes || x.ids !== c.ids || x.transport === 'none') continue;
            const s = spans.get(generationOf(x));
            if (s) s.last = Math.max(s.last, x.round);
            else spans.set(generationOf(x), { first: x.round, last: x.round });
          }
          const text = [...spans.entries()].map(([g, s]) => `${g + 1}: rounds ${s.first + 1}–${s.last + 1}`).join(', ');
          return `${c.nodes} nodes, ${c.ids} ids: clusters started afresh for each generation (${text})`;
        })
      : [];
  const where = o.urls.length > 0 ? `running deployments ${o.urls.map((u) => u.join(',')).join(' and ')}` : 'local clusters';
  const header = `Replica compare — ${machineLine(info)}; ${where}; ${o.connections} connections, ${o.records} records per round (+${o.warmup} warm-up), ${roundsText}; took ${minutes.toFixed(1)} min`;
  const base = resultsBase(o.out, 'compare', info);
  const name = basename(base);
  const mdPath = `${base}.md`;

  const subtitle = `sha ${info.sha} · ${info.date.slice(0, 16)} · ${info.cpu}, ${info.cores} cores · ${o.connections} connections, ${o.records} records per round`;
  const series = o.transports.map((v) => (v === 'plexus' ? 'plexus (direct mTLS)' : `nats ${v.slice(5)}`));
  const svg = stackSvg([
    barChartSvg({
      title: 'Replicated writes/s, plexus vs nats (median over rounds)',
      subtitle,
      series,
      groups: configs.map((c) => {
        const r = ratioOf(c, 'per-write');
        return { label: `${c.nodes} nodes, ${c.ids}`, values: o.transports.map((v) => medianOf(v, c) ?? 0), ...(r?.ratio ? { note: `×${r.ratio.toFixed(2)}${ci(r.interval)} vs per-write` } : {}) };
      }),
    }),
    barChartSvg({
      title: 'CPU ms per replicated write, every node and broker process (median over rounds)',
      series,
      unit: 'CPU ms per write',
      format: (v) => v.toFixed(2),
      groups: configs.map((c) => {
        const r = ratioOf(c, 'per-write');
        return { label: `${c.nodes} nodes, ${c.ids}`, values: o.transports.map((v) => cpuOf(v, c) ?? 0), ...(r?.cpuRatio ? { note: `per-write ÷ plexus ${r.cpuRatio.toFixed(2)}` } : {}) };
      }),
    }),
    ...(explained.length > 0
      ? [
          stackedBarSvg({
            title: 'Where the CPU of a replicated write goes (--explain, median over rounds)',
            parts: COMPONENTS.map((k) => COMPONENT_LABELS[k]),
            bars: explained.map((e) => ({ label: `${variantName(e.variant)}, ${e.nodes} nodes, ${e.ids}`, values: COMPONENTS.map((k) => e.msPerWrite[k]) })),
            unit: 'CPU ms per replicated write',
            format: (v) => v.toFixed(2),
          }),
        ]
      : []),
  ]);

  const markdown = [
    `# ${header}`,
    '',
    `![replicated writes/s and CPU per write](${name}.svg)`,
    '',
    `## Ratios (median over paired rounds, 95 % bootstrap interval${o.generations > 1 ? ' over generations of clusters, then rounds' : ''})`,
    '',
    ratioTable,
    '',
    ...generationLines.map((l) => `- ${l}`),
    ...statsLines.map((l) => `- ${l}`),
    ...baselineLines.map((l) => `- ${l}`),
    '',
    '## CPU per replicated write (every node and broker process; the load generator apart)',
    '',
    cpuTable,
    '',
    ...(breakdownTables.length > 0 ? ['## Why: CPU per write by component (--explain; method in docs/benchmarks.md)', '', ...breakdownTables] : []),
    '## Every run',
    '',
    everyRun,
    '',
    `A round runs every transport once, back to back, on clusters started ${o.generations > 1 ? `afresh for each of ${o.generations} generations` : 'once'} per configuration; the ratio of a round pairs its runs. ` +
      'replicated/s: records ÷ seconds from the first request until every node held every record with one digest. ' +
      'verified: every node ended with exactly the acknowledged records and the same digest, with 0 errors. ' +
      'Lag: origin write → commit on the receiving node, all nodes together. CPU: measured phase only, from /proc (local) or process_cpu_seconds_total (--urls).',
    '',
  ].join('\n');

  const options = { nodes: o.nodes, ids: o.ids, transports: o.transports, records: o.records, warmup: o.warmup, connections: o.connections, rounds: o.rounds, budgetSec: o.budgetSec, generations: o.generations, baseline: o.baseline, quick: o.quick, urls: o.urls, explain: o.explain, maxLagMs: o.maxLagMs };
  const full = {
    benchmark: 'compare',
    format: REPORT_FORMAT,
    ...info,
    options,
    minutes: Number(minutes.toFixed(2)),
    runs: outcomes,
    ratios,
    ratioStats: { 'per-write': perWrite, batched },
  };

  const summary = {
    runs: outcomes.map((r) => ({
      transport: r.transport,
      mode: r.mode,
      nodes: r.nodes,
      ids: r.ids,
      round: r.round,
      generation: generationOf(r),
      records: r.records,
      acceptedPerSec: r.acceptedPerSec,
      replicatedPerSec: r.replicatedPerSec,
      cpuMsPerWrite: isRun(r) ? Number((r.cpuSecPer1kWrites.nodes + r.cpuSecPer1kWrites.brokers).toFixed(4)) : null,
      errors: r.errors,
      verified: r.verified,
    })),
    ratios,
    meanRatio: perWrite.mean,
    stdRatio: perWrite.std,
    meanRatioInterval: perWrite.interval,
    meanCpuRatio: perWrite.cpuMean,
    meanCpuRatioInterval: perWrite.cpuInterval,
    meanRatioBatched: batched.mean,
    stdRatioBatched: batched.std,
    meanRatioBatchedInterval: batched.interval,
    meanCpuRatioBatched: batched.cpuMean,
    published: { ...PUBLISHED, ...(againstPublished(perWriteBounds) ?? { coversMean: null, overlapsRange: null }) },
    ...(explained.length > 0 ? { breakdown: explained } : {}),
    sha: info.sha,
    report: mdPath,
  };

  const stdout = [
    '',
    header,
    '',
    ratioTable,
    '',
    ...generationLines,
    ...statsLines,
    ...baselineLines,
    '',
    cpuTable,
    '',
    ...breakdownTables,
    everyRun,
    '',
    `report: ${mdPath} (chart ${name}.svg, data ${name}.json)`,
    JSON.stringify(summary),
    '',
  ].join('\n');

  return { base, markdown, svg, json: `${JSON.stringify(full, null, 2)}\n`, stdout };
}

/** Writes the chart, the markdown report and the JSON data to `<base>.svg`, `.md` and `.json`, creating the directory. */
export function writeReport(report: CompareReport): void {
  writeResults(report.base, { svg: report.svg, md: report.markdown, json: report.json });
}

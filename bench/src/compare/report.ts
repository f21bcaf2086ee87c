// What `pnpm compare` reports: the markdown report, the full JSON data, the SVG chart
// (files named after the date, stamped with the git sha and the machine), and the
// stdout text that ends with the one-line JSON summary.
import { basename } from 'node:path';
import { isRun, type Variant } from '../cluster-run.js';
import { machineLine, type MachineInfo } from '../env-info.js';
import { resultsBase, writeResults } from '../results-files.js';
import { formatCount, runTable } from '../run-table.js';
import { barChartSvg } from '../svg.js';
import { aggregate } from './aggregate.js';
import type { CompareOptions } from './args.js';
import type { ComparedOutcome } from './execute.js';

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

/**
 * Renders the report of a finished comparison. Pure: the same input gives the same
 * bytes, which is what lets results of different commits be compared.
 */
export function buildReport({ options: o, outcomes, info, minutes }: ReportInput): CompareReport {
  const { configs, versusModes, ratios, perWrite, batched, medianOf, ratioOf } = aggregate(o, outcomes);

  const everyRun = runTable(outcomes, { round: true });

  const ratioTable = [
    `| nodes | ids | plexus replicated/s | ${versusModes.map((m) => `nats ${m} replicated/s`).join(' | ')} | ${versusModes.map((m) => `plexus / ${m}`).join(' | ')} |`,
    `|---:|---|---:|${versusModes.map(() => '---:|').join('')}${versusModes.map(() => '---:|').join('')}`,
    ...configs.map((c) => {
      const p = medianOf('plexus', c);
      const n = versusModes.map((m) => medianOf(`nats-${m}` as Variant, c));
      const rs = versusModes.map((m) => ratioOf(c, m));
      return `| ${c.nodes} | ${c.ids} | ${p === undefined ? '–' : formatCount(p)} | ${n.map((x) => (x === undefined ? '–' : formatCount(x))).join(' | ')} | ${rs.map(pct).join(' | ')} |`;
    }),
  ].join('\n');

  const statsLines = [
    `plexus / nats per-write: mean ${perWrite.mean ?? '–'}, standard deviation ${perWrite.std ?? '–'} over ${perWrite.n} configuration(s)${versusModes.includes('per-write') ? '' : ' (not run)'}`,
    `plexus / nats batched:   mean ${batched.mean ?? '–'}, standard deviation ${batched.std ?? '–'} over ${batched.n} configuration(s)${versusModes.includes('batched') ? '' : ' (not run)'}`,
    'published (Harper 4.3 → 4.4, 4/5/6/8 nodes): mean 1.51, standard deviation 0.09, one outlier (2.21) removed',
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

  const header = `Replica compare — ${machineLine(info)}; ${o.connections} connections, ${o.records} records per run (+${o.warmup} warm-up), ${o.rounds} round(s); took ${minutes.toFixed(1)} min`;
  const base = resultsBase(o.out, 'compare', info);
  const name = basename(base);
  const mdPath = `${base}.md`;

  const svg = barChartSvg({
    title: `Replicated writes/s, plexus vs nats (median of ${o.rounds} round${o.rounds === 1 ? '' : 's'})`,
    subtitle: `sha ${info.sha} · ${info.date.slice(0, 16)} · ${info.cpu}, ${info.cores} cores · ${o.connections} connections, ${o.records} records per run`,
    series: o.transports.map((v) => (v === 'plexus' ? 'plexus (direct mTLS)' : `nats ${v.slice(5)}`)),
    groups: configs.map((c) => {
      const r = ratioOf(c, 'per-write');
      return { label: `${c.nodes} nodes, ${c.ids}`, values: o.transports.map((v) => medianOf(v, c) ?? 0), ...(r ? { note: `×${r.toFixed(2)} vs per-write` } : {}) };
    }),
  });

  const markdown = [
    `# ${header}`,
    '',
    `![replicated writes/s](${name}.svg)`,
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
    everyRun,
    '',
    'replicated/s: records ÷ seconds from the first request until every node held every record with one digest. ' +
      'verified: every node ended with exactly the acknowledged records and the same digest, with 0 errors. ' +
      'Lag: origin write → commit on the receiving node, all nodes together. CPU: measured phase only, from /proc.',
    '',
  ].join('\n');

  const full = {
    benchmark: 'compare',
    ...info,
    options: { nodes: o.nodes, ids: o.ids, transports: o.transports, records: o.records, warmup: o.warmup, connections: o.connections, rounds: o.rounds, baseline: o.baseline, quick: o.quick },
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
      records: r.records,
      acceptedPerSec: r.acceptedPerSec,
      replicatedPerSec: r.replicatedPerSec,
      errors: r.errors,
      verified: r.verified,
    })),
    ratios,
    meanRatio: perWrite.mean,
    stdRatio: perWrite.std,
    meanRatioBatched: batched.mean,
    stdRatioBatched: batched.std,
    sha: info.sha,
    report: mdPath,
  };

  const stdout = [
    '',
    header,
    '',
    ratioTable,
    '',
    ...statsLines,
    ...baselineLines,
    '',
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

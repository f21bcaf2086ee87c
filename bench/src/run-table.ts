// The "every run" table of the cluster benchmarks (`pnpm compare`, `pnpm bench:replication`).
import { isRun, type Outcome } from './cluster-run.js';

/** A whole number with thousands separators: 12,345. */
export const formatCount = (n: number): string => Math.round(n).toLocaleString('en');

/** A run as the table shows it; `round` is 0-based. */
export type RunRow = Outcome & { readonly round?: number };

/**
 * A markdown table with one row per run, in the order given, headed by the column names.
 * A failed run keeps its transport, mode, size, key mode and errors, and shows why it
 * failed (pipes made slashes, 200 characters at most) in place of `verified`. With
 * `round`, a column after the key mode shows each run's round counted from 1.
 */
export function runTable(rows: readonly RunRow[], columns: { readonly round: boolean }): string {
  const round = (r: RunRow) => (columns.round ? [String((r.round ?? 0) + 1)] : []);
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [
    line([
      'transport',
      'mode',
      'nodes',
      'ids',
      ...(columns.round ? ['round'] : []),
      'accepted/s',
      '**replicated/s**',
      'POST p50 / p99 ms',
      'lag p50 / p99 ms',
      'entries per frame or message',
      'CPU s per 1k writes: nodes + brokers (loadgen)',
      'peak RSS MiB: nodes; brokers',
      'errors',
      'verified',
    ]),
    `|---|---|---:|---|${columns.round ? '---:|' : ''}---:|---:|---|---|---:|---|---|---:|---|`,
    ...rows.map((r) => {
      const key = [r.transport, r.mode, r.nodes, r.ids, ...round(r)];
      if (!isRun(r)) return line([...key, '–', '–', '–', '–', '–', '–', '–', r.errors, `**FAILED**: ${r.failure.replaceAll('|', '/').slice(0, 200)}`]);
      return line([
        ...key,
        formatCount(r.acceptedPerSec),
        `**${formatCount(r.replicatedPerSec)}**`,
        `${r.postP50Ms} / ${r.postP99Ms}`,
        `${r.lagP50Ms} / ${r.lagP99Ms}`,
        r.entriesPerFrame,
        `${r.cpuSecPer1kWrites.nodes} + ${r.cpuSecPer1kWrites.brokers} (${r.cpuSecPer1kWrites.loadgen})`,
        `${r.peakRssMiB.nodes.join(', ')}${r.peakRssMiB.brokers.length ? `; ${r.peakRssMiB.brokers.join(', ')}` : ''}`,
        r.errors,
        r.verified ? 'yes' : '**NO**',
      ]);
    }),
  ].join('\n');
}

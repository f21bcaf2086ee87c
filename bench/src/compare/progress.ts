// The live progress of `pnpm compare` on stderr: one line rewritten in place on a
// terminal, a line every 5 s otherwise, and one line per finished run.
import type { Progress, Run } from '../cluster-run.js';
import type { PlannedRun } from './plan.js';

export interface ProgressReporter {
  /** The running run `i` reached `s`. */
  update(i: number, p: PlannedRun, s: Progress): void;
  finished(i: number, p: PlannedRun, run: Run): void;
  failed(i: number, p: PlannedRun, failure: string): void;
}

/**
 * A reporter for a plan of `total` runs of `records` records each, writing to `out`
 * (stderr): on a terminal it rewrites one line, elsewhere it writes a progress line at
 * most every 5 s (and at each start). A finished or failed run always gets a line.
 */
export function progressReporter(total: number, records: number, out: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const tty = out.isTTY === true;
  const clear = tty ? '\r\x1b[K' : '';
  let lastLine = 0;
  const prefix = (i: number) => `[${i + 1}/${total}]`;
  return {
    update(i, p, s) {
      const what = `${prefix(i)} ${p.variant} · ${p.nodes} node${p.nodes > 1 ? 's' : ''} · ${p.ids} ids`;
      const detail =
        s.phase === 'load' || s.phase === 'replicating'
          ? `${s.phase} · on one node ${s.most.toLocaleString('en')} · on every node ${s.everywhere.toLocaleString('en')} of ${records.toLocaleString('en')}`
          : s.phase;
      const line = `${what} · ${s.elapsedSec.toFixed(0)} s · ${detail}`;
      if (tty) out.write(`${clear}${line}`);
      else if (Date.now() - lastLine >= 5000 || s.phase === 'starting') {
        lastLine = Date.now();
        out.write(`${line}\n`);
      }
    },
    finished(i, p, run) {
      out.write(`${clear}${prefix(i)} ${p.variant} · ${p.nodes} nodes · ${p.ids}: accepted ${run.acceptedPerSec}/s, replicated ${run.replicatedPerSec}/s, errors ${run.errors}, ${run.verified ? 'verified' : 'NOT VERIFIED'}\n`);
    },
    failed(i, p, failure) {
      out.write(`${clear}${prefix(i)} ${p.variant} · ${p.nodes} nodes · ${p.ids}: FAILED: ${failure}\n`);
    },
  };
}

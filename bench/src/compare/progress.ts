// The live progress of `pnpm compare` on stderr: one line rewritten in place on a
// terminal, a line every 5 s otherwise, and one line per finished run.
import type { Progress, Run, Variant } from '../cluster-run.js';
import type { IdMode } from '../records.js';

/** Which run a progress line is about. */
export interface RunLabel {
  readonly variant: Variant;
  readonly nodes: number;
  readonly ids: IdMode;
  /** 0-based. */
  readonly round: number;
}

export interface ProgressReporter {
  /** The running run reached `s`. */
  update(run: RunLabel, s: Progress): void;
  finished(run: RunLabel, result: Run): void;
  failed(run: RunLabel, failure: string): void;
}

const nameOf = (p: RunLabel) => `${p.variant} · ${p.nodes} node${p.nodes > 1 ? 's' : ''} · ${p.ids} ids · round ${p.round + 1}`;

/**
 * A reporter for runs of `records` records each, writing to `out` (stderr): on a
 * terminal it rewrites one line, elsewhere it writes a progress line at most every 5 s
 * (and at each start). A finished or failed run always gets a line.
 */
export function progressReporter(records: number, out: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const tty = out.isTTY === true;
  const clear = tty ? '\r\x1b[K' : '';
  let lastLine = 0;
  return {
    update(p, s) {
      const detail =
        s.phase === 'load' || s.phase === 'replicating'
          ? `${s.phase} · on one node ${s.most.toLocaleString('en')} · on every node ${s.everywhere.toLocaleString('en')} of ${records.toLocaleString('en')}`
          : s.phase;
      const line = `${nameOf(p)} · ${s.elapsedSec.toFixed(0)} s · ${detail}`;
      if (tty) out.write(`${clear}${line}`);
      else if (Date.now() - lastLine >= 5000 || s.phase === 'starting') {
        lastLine = Date.now();
        out.write(`${line}\n`);
      }
    },
    finished(p, run) {
      out.write(`${clear}${nameOf(p)}: accepted ${run.acceptedPerSec}/s, replicated ${run.replicatedPerSec}/s, errors ${run.errors}, ${run.verified ? 'verified' : 'NOT VERIFIED'}\n`);
    },
    failed(p, failure) {
      out.write(`${clear}${nameOf(p)}: FAILED: ${failure}\n`);
    },
  };
}

// Runs the plan of `pnpm compare`, one cluster at a time.
import { failedRun, runCluster, type Outcome, type RunOptions, type Run } from '../cluster-run.js';
import type { CompareOptions } from './args.js';
import type { PlannedRun } from './plan.js';
import type { ProgressReporter } from './progress.js';

/** A run's outcome with the round it belongs to (0-based). */
export type ComparedOutcome = Outcome & { readonly round: number };

/**
 * Runs every planned run in order, each on a fresh cluster, and returns one outcome per
 * run in plan order. A run that throws becomes a failed outcome and the plan goes on.
 * `run` is the runner (the real one unless a test replaces it).
 */
export async function executePlan(
  plan: readonly PlannedRun[],
  o: Pick<CompareOptions, 'records' | 'warmup' | 'connections'>,
  progress: ProgressReporter,
  run: (o: RunOptions) => Promise<Run> = runCluster,
): Promise<ComparedOutcome[]> {
  const outcomes: ComparedOutcome[] = [];
  for (const [i, p] of plan.entries()) {
    const what = { variant: p.variant, nodes: p.nodes, ids: p.ids };
    try {
      const done = await run({ ...what, records: o.records, warmup: o.warmup, connections: o.connections, tag: `${i}`, onProgress: (s) => progress.update(i, p, s) });
      outcomes.push({ ...done, round: p.round });
      progress.finished(i, p, done);
    } catch (err) {
      const failed = failedRun(what, err);
      outcomes.push({ ...failed, round: p.round });
      progress.failed(i, p, failed.failure);
    }
  }
  return outcomes;
}

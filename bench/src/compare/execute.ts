// Runs the plan of `pnpm compare`: per configuration and cluster generation one
// deployment per transport, warmed up, then rounds of every transport in rotated order.
import type { Deployment } from '../deployment.js';
import { failedRun, isRun, measureRound, runCluster, warmUp, type Outcome, type Progress, type Run, type RunOptions, type RoundOptions } from '../cluster-run.js';
import { startLocal, variantOf, type Variant } from '../deployment.js';
import { breakdownOf } from '../explain.js';
import { MIN_ROUNDS, type CompareOptions } from './args.js';
import { roundOrder, type PlannedConfig } from './plan.js';
import type { ProgressReporter } from './progress.js';

/** The table round `round` of configuration `ci` writes to (and, with --explain, the key its trace is kept under). */
const roundTable = (runId: string, ci: number, round: number): string => `c${runId}${ci}r${round}`;

/**
 * A run's outcome with the round it belongs to (0-based, counted across generations; the
 * baseline is round 0) and the generation of clusters it ran on (0-based; absent in
 * results stored before generations existed, which had one).
 */
export type ComparedOutcome = Outcome & { readonly round: number; readonly generation?: number };

/** The generation of an outcome: 0 where none is recorded. */
export const generationOf = (x: ComparedOutcome): number => x.generation ?? 0;

/** What execution needs of the world; the real one unless a test replaces it. */
export interface Runner {
  /** A ready deployment of `variant` with `nodes` nodes. */
  deploy(variant: Variant, nodes: number): Promise<Deployment>;
  warmUp(dep: Deployment, o: Parameters<typeof warmUp>[1]): Promise<void>;
  measure(dep: Deployment, o: RoundOptions): Promise<Run>;
  /** The single-node baseline: a fresh node, warmed up, measured once, stopped. */
  baseline(o: RunOptions): Promise<Run>;
  now(): number;
}

/** Local clusters started and stopped here; `env` goes to every node (e.g. flow control); `explain` profiles them. */
export function localRunner(env: Record<string, string> = {}, explain = false): Runner {
  const cluster = Object.keys(env).length > 0 ? { env } : undefined;
  return {
    deploy: (variant, nodes) => startLocal(variant, nodes, cluster, explain),
    warmUp,
    measure: measureRound,
    baseline: (o) => runCluster({ ...o, ...(cluster ? { cluster } : {}) }),
    now: () => Date.now(),
  };
}

/** Deployments already running, one per variant; never stopped here. */
export function remoteRunner(deployments: readonly Deployment[]): Runner {
  return {
    deploy: async (variant) => {
      const d = deployments.find((x) => x.variant === variant);
      if (!d) throw new Error(`no deployment of ${variant}`);
      return d;
    },
    warmUp,
    measure: measureRound,
    baseline: () => Promise.reject(new Error('no baseline against running deployments')),
    now: () => Date.now(),
  };
}

/**
 * Runs every configuration in order. A configuration runs `o.generations` generations one
 * after the other; a generation starts one deployment per variant (each warmed up), runs
 * rounds on them and stops them. A round runs every variant once, in an order rotated each
 * round (rounds are counted across generations), on fresh records in a table of its own.
 * The rounds and the budget of a configuration are shared evenly between its generations:
 * each runs at most ceil(`o.rounds` / generations) rounds and, with a budget, starts no
 * round once its share of `o.budgetSec` passed, after at least {@link minRoundsPerGeneration}.
 * A deployment that fails to start or a round that throws becomes a failed outcome and
 * ends the configuration; the deployments are stopped in every case.
 * `runId` keeps tables and ids of different comparisons apart on long-lived deployments.
 */
export async function executePlan(
  plan: readonly PlannedConfig[],
  o: Pick<CompareOptions, 'records' | 'warmup' | 'connections' | 'rounds' | 'budgetSec' | 'generations' | 'explain'>,
  progress: ProgressReporter,
  runner: Runner,
  runId = '',
): Promise<ComparedOutcome[]> {
  const outcomes: ComparedOutcome[] = [];
  const { generations } = o;
  const roundsPerGeneration = Math.ceil(o.rounds / generations);
  const budgetMs = o.budgetSec === null ? null : (o.budgetSec * 1000) / generations;
  const minRounds = minRoundsPerGeneration(generations);
  for (const [ci, c] of plan.entries()) {
    const what = (variant: Variant, nodes = c.nodes) => ({ variant, nodes, ids: c.ids });
    if (c.baseline) {
      const label = { ...what('none', 1), round: 0 };
      try {
        const done = await runner.baseline({ ...what('none', 1), records: o.records, warmup: o.warmup, connections: o.connections, tag: `${runId}${ci}b`, onProgress: (s: Progress) => progress.update(label, s) });
        outcomes.push({ ...done, round: 0 });
        progress.finished(label, done);
      } catch (err) {
        const failed = failedRun(what('none', 1), err);
        outcomes.push({ ...failed, round: 0 });
        progress.failed(label, failed.failure);
      }
    }
    let round = 0;
    let broken = false;
    for (let generation = 0; generation < generations && !broken; generation++) {
      const deployments = new Map<Variant, Deployment>();
      const first = outcomes.length;
      /** Runs one step of `v` in the current round; a throw is `v`'s failed outcome there, and ends the configuration. */
      const attempt = async (v: Variant, step: (label: ReturnType<typeof what> & { round: number }) => Promise<void>): Promise<boolean> => {
        const label = { ...what(v), round };
        try {
          await step(label);
          return true;
        } catch (err) {
          const failed = failedRun(what(v), err);
          outcomes.push({ ...failed, round, generation });
          progress.failed(label, failed.failure);
          broken = true;
          return false;
        }
      };
      try {
        for (const [vi, v] of c.variants.entries()) {
          const ready = await attempt(v, async (label) => {
            progress.update(label, { phase: 'starting', elapsedSec: 0, most: 0, everywhere: 0 });
            const dep = await runner.deploy(v, c.nodes);
            deployments.set(v, dep);
            progress.update(label, { phase: 'warmup', elapsedSec: 0, most: 0, everywhere: 0 });
            await runner.warmUp(dep, { records: o.warmup, connections: o.connections, ids: c.ids, tag: `${runId}${ci}w${vi}${generation > 0 ? `g${generation}` : ''}` });
          });
          if (!ready) break;
        }
        const started = runner.now();
        const more = (k: number) => !broken && k < roundsPerGeneration && (budgetMs === null || k < minRounds || runner.now() - started < budgetMs);
        for (let k = 0; more(k); k++, round++) {
          for (const v of roundOrder(c.variants, round)) {
            const measured = await attempt(v, async (label) => {
              const dep = deployments.get(v) as Deployment;
              const done = await runner.measure(dep, { ids: c.ids, records: o.records, connections: o.connections, table: roundTable(runId, ci, round), tag: `${runId}${ci}.${round}`, explain: o.explain, onProgress: (s) => progress.update(label, s) });
              outcomes.push({ ...done, round, generation });
              progress.finished(label, done);
            });
            if (!measured) break;
          }
        }
      } finally {
        await Promise.all([...deployments.values()].map((d) => d.stop().catch(() => {})));
      }
      explainRounds(outcomes, first, c, deployments, runId, ci);
    }
  }
  return outcomes;
}

/**
 * Rounds a generation runs before a budget may end it: {@link MIN_ROUNDS} when there is
 * one generation (fewer give no interval), else 2, so that every generation shows some of
 * its own spread.
 */
export function minRoundsPerGeneration(generations: number): number {
  return generations === 1 ? MIN_ROUNDS : 2;
}

/**
 * --explain: once the deployments of configuration `c` stopped (and wrote their
 * profiles), gives each of its measured rounds (outcomes from index `first`) its CPU
 * breakdown. A deployment without profiles leaves its rounds without one.
 */
function explainRounds(outcomes: ComparedOutcome[], first: number, c: PlannedConfig, deployments: ReadonlyMap<Variant, Deployment>, runId: string, ci: number): void {
  for (const [variant, dep] of deployments) {
    if (!dep.explain) continue;
    let rounds;
    try {
      rounds = dep.explain.rounds();
    } catch (err) {
      process.stderr.write(`compare: no CPU breakdown for ${variant} at ${c.nodes} nodes, ${c.ids} ids: ${(err as Error).message}\n`);
      continue;
    }
    for (let i = first; i < outcomes.length; i++) {
      const x = outcomes[i] as ComparedOutcome;
      if (!isRun(x) || variantOf(x) !== variant || x.nodes !== c.nodes || x.ids !== c.ids) continue;
      const traced = rounds.get(roundTable(runId, ci, x.round));
      if (!traced) continue;
      const total = Number((x.cpuSecPer1kWrites.nodes + x.cpuSecPer1kWrites.brokers).toFixed(4));
      outcomes[i] = { ...x, breakdown: breakdownOf(traced, x.cpuSec.brokers.reduce((s, v) => s + v, 0), x.records, total) };
    }
  }
}

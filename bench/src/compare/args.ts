// The command line of `pnpm compare`: flags, their defaults (with and without --quick),
// and the checks that turn them into one frozen set of options.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { VARIANTS, type Variant } from '../cluster-run.js';
import type { IdMode } from '../records.js';

/** Rounds a budget never cuts below: fewer give no interval. */
export const MIN_ROUNDS = 3;
/** Seconds of rounds --quick runs per configuration (about two minutes in all, here). */
export const QUICK_BUDGET_SEC = 75;
/** Cluster generations --quick starts per configuration: the budget is shared between them. */
export const QUICK_GENERATIONS = 3;

export const USAGE = `usage: pnpm compare [--quick] [--nodes 4,5,6,8] [--ids random,sequential]
       [--transports plexus,nats-per-write,nats-batched] [--records 16000] [--warmup 3000]
       [--connections 500] [--rounds 3] [--budget SECONDS] [--generations 1]
       [--baseline yes|no] [--explain] [--max-lag MS] [--out bench/results]
       pnpm compare --urls http://h1:8080,http://h2:8080,... [--urls ...] [--ids random]
       [--records N] [--warmup N] [--connections N] [--rounds N] [--budget SECONDS] [--out DIR]
Each configuration starts one cluster per transport, warms them up, then runs rounds:
every transport once per round, in an order rotated each round, until --rounds rounds
ran or --budget seconds of rounds passed (at least ${MIN_ROUNDS} rounds).
--generations N: start the clusters afresh N times per configuration, sharing the rounds
and the budget between them; the intervals then carry the differences between clusters.
--quick: 4 nodes, random ids, 5000 records per round, rounds for ${QUICK_BUDGET_SEC} s
on ${QUICK_GENERATIONS} generations of clusters.
--urls: one deployment that is already running (repeat for another: each node's
transport and mode come from its /status); nothing is started or stopped.`;


/** bench/results, where reports go without --out. */
export const RESULTS_DIR = fileURLToPath(new URL('../../results', import.meta.url));

export interface CompareOptions {
  readonly quick: boolean;
  /** Cluster sizes, in the order given. */
  readonly nodes: readonly number[];
  readonly ids: readonly IdMode[];
  /** Always includes plexus; never `none` (the baseline is its own option). */
  readonly transports: readonly Variant[];
  /** Records of each measured phase. */
  readonly records: number;
  /** Records written before each measured phase. */
  readonly warmup: number;
  readonly connections: number;
  /** The most rounds each configuration runs (every transport once per round). */
  readonly rounds: number;
  /** Seconds of rounds per configuration after which no new round starts (at least {@link MIN_ROUNDS} run); null: always --rounds. */
  readonly budgetSec: number | null;
  /** Times per configuration every transport's cluster is started afresh; rounds and budget are shared between them. */
  readonly generations: number;
  /** Deployments already running, each the base URLs of its nodes; empty: start local clusters. */
  readonly urls: readonly (readonly string[])[];
  /** Break each path's CPU per write down by component (thread CPU and sampled profiles; local only). */
  readonly explain: boolean;
  /** MAX_REPLICATION_LAG_MS of every node started (flow control); null: off. */
  readonly maxLagMs: number | null;
  /** A single-node run per key mode, before its clusters. */
  readonly baseline: boolean;
  /** Directory the report files go to. */
  readonly out: string;
}

/** The command line asks for what `pnpm compare` cannot do; `message` says which flag and why. */
export class UsageError extends Error {}

export type CompareArgs =
  | { readonly help: true; readonly version: false }
  | { readonly help: false; readonly version: true }
  | { readonly help: false; readonly version: false; readonly options: CompareOptions };

/**
 * Reads `pnpm compare`'s flags (`argv` without node and the script). `--help` wins over
 * every other flag. Otherwise returns frozen options in which every number is an integer
 * in range and every key mode and transport is known; throws a {@link UsageError} naming
 * the first flag that is not. Unknown flags and positional arguments throw parseArgs'
 * own error.
 */
export function parseCompareArgs(argv: readonly string[]): CompareArgs {
  const { values: args } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      nodes: { type: 'string' },
      ids: { type: 'string' },
      transports: { type: 'string' },
      records: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '500' },
      rounds: { type: 'string' },
      budget: { type: 'string' },
      generations: { type: 'string' },
      baseline: { type: 'string' },
      urls: { type: 'string', multiple: true },
      explain: { type: 'boolean', default: false },
      'max-lag': { type: 'string' },
      out: { type: 'string', default: RESULTS_DIR },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', default: false },
    },
  });
  if (args.help) return { help: true, version: false };
  if (args.version) return { help: false, version: true };

  // --quick: 4 nodes, random ids, every transport, short rounds for a fixed budget: about two minutes.
  const quick = args.quick;
  const urls = (args.urls ?? []).map((list) => parseUrls(list));
  if (urls.length > 0) {
    for (const flag of ['nodes', 'transports', 'baseline', 'explain', 'max-lag', 'generations'] as const) {
      if (flag === 'explain' ? args.explain : args[flag] !== undefined) {
        throw new UsageError(`--${flag} does not apply with --urls: the deployments are what they are (their nodes' /status says which transport and mode)`);
      }
    }
    if (new Set(urls.map((u) => u.length)).size > 1) throw new UsageError(`--urls: every deployment needs the same number of nodes to be compared (got ${urls.map((u) => u.length).join(' and ')})`);
  }
  const nodes = positiveInts('nodes', args.nodes ?? (quick ? '4' : '4,5,6,8'), 2);
  const ids = (args.ids ?? (quick ? 'random' : 'random,sequential')).split(',') as IdMode[];
  for (const m of ids) if (m !== 'random' && m !== 'sequential') throw new UsageError(`--ids: unknown "${m}" (random or sequential)`);
  const transports = (args.transports ?? 'plexus,nats-per-write,nats-batched').split(',') as Variant[];
  for (const v of transports) if (!VARIANTS.includes(v) || v === 'none') throw new UsageError(`--transports: unknown "${v}" (plexus, nats-per-write, nats-batched)`);
  if (urls.length === 0 && !transports.includes('plexus')) throw new UsageError('--transports must include plexus: every ratio is plexus against a nats mode');
  const rounds = firstInt('rounds', args.rounds ?? (quick ? '40' : '3'), 1);
  const budget = args.budget ?? (quick && args.rounds === undefined ? String(QUICK_BUDGET_SEC) : undefined);
  const options: CompareOptions = {
    quick,
    nodes: Object.freeze(urls.length > 0 ? [urls[0]?.length as number] : nodes),
    ids: Object.freeze(ids),
    transports: Object.freeze(urls.length > 0 ? [] : transports),
    records: firstInt('records', args.records ?? (quick ? '5000' : '16000'), 1),
    warmup: firstInt('warmup', args.warmup ?? '3000', 0),
    connections: firstInt('connections', args.connections, 1),
    rounds,
    budgetSec: budget === undefined ? null : firstInt('budget', budget, 1),
    generations: urls.length > 0 ? 1 : firstInt('generations', args.generations ?? (quick ? String(QUICK_GENERATIONS) : '1'), 1),
    baseline: urls.length === 0 && (args.baseline ?? (quick ? 'no' : 'yes')) === 'yes',
    urls: Object.freeze(urls.map((u) => Object.freeze(u))),
    explain: args.explain,
    maxLagMs: args['max-lag'] === undefined ? null : firstInt('max-lag', args['max-lag'], 1),
    out: args.out,
  };
  return { help: false, version: false, options: Object.freeze(options) };
}

/** One deployment's comma-separated base URLs, each http(s) with a host, without a path; duplicates refused. */
function parseUrls(list: string): string[] {
  const out: string[] = [];
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new UsageError(`--urls: "${raw}" is not a URL (http://host:port)`);
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname.replace(/\/+$/, '') !== '' || u.search) throw new UsageError(`--urls: "${raw}" must be a node's base URL, http(s)://host:port without a path`);
    const base = `${u.protocol}//${u.host}`;
    if (out.includes(base)) throw new UsageError(`--urls: "${raw}" is given twice`);
    out.push(base);
  }
  if (out.length === 0) throw new UsageError('--urls: give at least one node URL');
  return out;
}

function positiveInts(name: string, text: string, min: number): number[] {
  const xs = text.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < min)) throw new UsageError(`--${name} must be integers ≥ ${min}, comma-separated (got "${text}")`);
  return xs;
}

/** The first of a comma-separated list, every item checked as for a list. */
function firstInt(name: string, text: string, min: number): number {
  return positiveInts(name, text, min)[0] as number;
}

// The command line of `pnpm compare`: flags, their defaults (with and without --quick),
// and the checks that turn them into one frozen set of options.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { VARIANTS, type Variant } from '../cluster-run.js';
import type { IdMode } from '../records.js';

export const USAGE = `usage: pnpm compare [--quick] [--nodes 4,5,6,8] [--ids random,sequential]
       [--transports plexus,nats-per-write,nats-batched] [--records 24000] [--warmup 3000]
       [--connections 500] [--rounds 1] [--baseline yes|no] [--out bench/results]`;

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
  /** How often each configuration runs every transport. */
  readonly rounds: number;
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
      transports: { type: 'string', default: 'plexus,nats-per-write,nats-batched' },
      records: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '500' },
      rounds: { type: 'string', default: '1' },
      baseline: { type: 'string' },
      out: { type: 'string', default: RESULTS_DIR },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', default: false },
    },
  });
  if (args.help) return { help: true, version: false };
  if (args.version) return { help: false, version: true };

  // --quick: 4 nodes, random ids, every transport, small counts: about a minute.
  const quick = args.quick;
  const nodes = positiveInts('nodes', args.nodes ?? (quick ? '4' : '4,5,6,8'), 2);
  const ids = (args.ids ?? (quick ? 'random' : 'random,sequential')).split(',') as IdMode[];
  for (const m of ids) if (m !== 'random' && m !== 'sequential') throw new UsageError(`--ids: unknown "${m}" (random or sequential)`);
  const transports = args.transports.split(',') as Variant[];
  for (const v of transports) if (!VARIANTS.includes(v) || v === 'none') throw new UsageError(`--transports: unknown "${v}" (plexus, nats-per-write, nats-batched)`);
  if (!transports.includes('plexus')) throw new UsageError('--transports must include plexus: every ratio is plexus against a nats mode');
  const options: CompareOptions = {
    quick,
    nodes: Object.freeze(nodes),
    ids: Object.freeze(ids),
    transports: Object.freeze(transports),
    records: firstInt('records', args.records ?? (quick ? '16000' : '24000'), 1),
    warmup: firstInt('warmup', args.warmup ?? '3000', 0),
    connections: firstInt('connections', args.connections, 1),
    rounds: firstInt('rounds', args.rounds, 1),
    baseline: (args.baseline ?? (quick ? 'no' : 'yes')) === 'yes',
    out: args.out,
  };
  return { help: false, version: false, options: Object.freeze(options) };
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

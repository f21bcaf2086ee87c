import { describe, expect, it } from 'vitest';
import { parseCompareArgs, RESULTS_DIR, UsageError, type CompareOptions } from '../src/compare/args.js';

const options = (argv: string[]): CompareOptions => {
  const parsed = parseCompareArgs(argv);
  if (parsed.help || parsed.version) throw new Error('expected options, got --help or --version');
  return parsed.options;
};
const usageError = (argv: string[]): string => {
  try {
    parseCompareArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
};

describe('compare options', () => {
  it('defaults to the full matrix, results in bench/results', () => {
    expect(options([])).toEqual({
      quick: false,
      nodes: [4, 5, 6, 8],
      ids: ['random', 'sequential'],
      transports: ['plexus', 'nats-per-write', 'nats-batched'],
      records: 16000,
      warmup: 3000,
      connections: 500,
      rounds: 3,
      budgetSec: null,
      generations: 1,
      baseline: true,
      urls: [],
      explain: false,
      maxLagMs: null,
      out: RESULTS_DIR,
    });
    expect(RESULTS_DIR).toMatch(/[/\\]bench[/\\]results$/);
  });

  it('--quick: 4 nodes, random ids, rounds of 5,000 records for 75 s (at most 40) on 3 generations of clusters, no baseline; the same warm-up', () => {
    expect(options(['--quick'])).toMatchObject({ quick: true, nodes: [4], ids: ['random'], records: 5000, warmup: 3000, rounds: 40, budgetSec: 75, generations: 3, baseline: false });
    expect(options(['--quick', '--generations', '1'])).toMatchObject({ budgetSec: 75, generations: 1 });
    expect(options(['--generations', '2'])).toMatchObject({ rounds: 3, generations: 2 });
    expect(usageError(['--generations', '0'])).toMatch(/^--generations must be integers ≥ 1/);
    expect(options(['--quick', '--rounds', '5'])).toMatchObject({ rounds: 5, budgetSec: null });
    expect(options(['--quick', '--budget', '30'])).toMatchObject({ rounds: 40, budgetSec: 30 });
    expect(options(['--budget', '30'])).toMatchObject({ rounds: 3, budgetSec: 30 });
  });

  it('--urls: one deployment per flag, base URLs only, the configuration from their count; flags about local clusters refused', () => {
    const o = options(['--urls', 'http://198.18.0.1:8080/, http://198.18.0.2:8080', '--urls', 'http://h3:8080,http://h4:8080', '--ids', 'sequential', '--rounds', '4']);
    expect(o).toMatchObject({ urls: [['http://198.18.0.1:8080', 'http://198.18.0.2:8080'], ['http://h3:8080', 'http://h4:8080']], nodes: [2], transports: [], baseline: false, rounds: 4, ids: ['sequential'] });
    expect(Object.isFrozen(o.urls[0])).toBe(true);
    expect(usageError(['--urls', 'h1:8080'])).toMatch(/^--urls: "h1:8080" must be a node's base URL/);
    expect(usageError(['--urls', 'not a url'])).toBe('--urls: "not a url" is not a URL (http://host:port)');
    expect(usageError(['--urls', 'http://h1:8080/status'])).toMatch(/without a path/);
    expect(usageError(['--urls', 'http://h1:8080,http://h1:8080/'])).toBe('--urls: "http://h1:8080/" is given twice');
    expect(usageError(['--urls', ','])).toBe('--urls: give at least one node URL');
    expect(usageError(['--urls', 'http://a:1,http://b:1', '--urls', 'http://c:1'])).toBe('--urls: every deployment needs the same number of nodes to be compared (got 2 and 1)');
    for (const flag of [['--nodes', '4'], ['--transports', 'plexus'], ['--baseline', 'yes'], ['--explain'], ['--max-lag', '500'], ['--generations', '2']]) {
      expect(usageError(['--urls', 'http://a:1', ...flag])).toMatch(new RegExp(`^${flag[0]} does not apply with --urls`));
    }
  });

  it('--explain and --max-lag', () => {
    expect(options(['--explain', '--max-lag', '500'])).toMatchObject({ explain: true, maxLagMs: 500 });
    expect(usageError(['--max-lag', '0'])).toMatch(/^--max-lag must be integers ≥ 1/);
    expect(usageError(['--budget', 'soon'])).toMatch(/^--budget must be integers ≥ 1/);
  });

  it('takes explicit values over the --quick defaults', () => {
    const o = options(['--quick', '--nodes', '2, 3', '--ids', 'sequential', '--transports', 'nats-batched,plexus', '--records', '400', '--warmup', '0', '--connections', '20', '--rounds', '3', '--baseline', 'yes', '--out', '/tmp/x']);
    expect(o).toEqual({ quick: true, nodes: [2, 3], ids: ['sequential'], transports: ['nats-batched', 'plexus'], records: 400, warmup: 0, connections: 20, rounds: 3, budgetSec: null, generations: 3, baseline: true, urls: [], explain: false, maxLagMs: null, out: '/tmp/x' });
  });

  it('returns frozen options', () => {
    const o = options([]);
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(o.nodes)).toBe(true);
    expect(Object.isFrozen(o.ids)).toBe(true);
    expect(Object.isFrozen(o.transports)).toBe(true);
  });

  it('reads a single count from the first item of a list, and any --baseline other than yes as no', () => {
    expect(options(['--records', '100,200', '--baseline', 'maybe'])).toMatchObject({ records: 100, baseline: false });
  });

  it('--help wins over every other flag, valid or not', () => {
    expect(parseCompareArgs(['--nodes', 'four', '--help'])).toEqual({ help: true, version: false });
    expect(parseCompareArgs(['--version'])).toEqual({ help: false, version: true });
  });

  it('names the first bad flag and why', () => {
    expect(usageError(['--nodes', 'four'])).toBe('--nodes must be integers ≥ 2, comma-separated (got "four")');
    expect(usageError(['--nodes', '1'])).toMatch(/^--nodes must be integers ≥ 2/);
    expect(usageError(['--ids', 'random,mixed'])).toBe('--ids: unknown "mixed" (random or sequential)');
    expect(usageError(['--transports', 'plexus,kafka'])).toBe('--transports: unknown "kafka" (plexus, nats-per-write, nats-batched)');
    expect(usageError(['--transports', 'plexus,none'])).toMatch(/^--transports: unknown "none"/);
    expect(usageError(['--transports', 'nats-batched'])).toBe('--transports must include plexus: every ratio is plexus against a nats mode');
    expect(usageError(['--records', '0'])).toBe('--records must be integers ≥ 1, comma-separated (got "0")');
    expect(usageError(['--warmup=-1'])).toMatch(/^--warmup must be integers ≥ 0/);
    expect(usageError(['--connections', '1.5'])).toMatch(/^--connections must be integers ≥ 1/);
    expect(usageError(['--rounds', '0'])).toMatch(/^--rounds must be integers ≥ 1/);
    expect(usageError(['--nodes', 'x', '--rounds', '0'])).toMatch(/^--nodes/);
  });

  it('leaves unknown flags to parseArgs, whose error is not a usage error', () => {
    expect(() => parseCompareArgs(['--node', '4'])).toThrow(expect.objectContaining({ code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }));
    expect(() => parseCompareArgs(['--node', '4'])).not.toThrow(UsageError);
  });
});

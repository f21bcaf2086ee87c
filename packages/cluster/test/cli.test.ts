import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { versionOf } from '@replica/transport-api/cli';
import { cliConventions, runCli } from '@replica/transport-api/testing/cli';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

describe('pnpm cluster keeps the CLI conventions', () => {
  cliConventions(CLI, 'cluster', versionOf(new URL('../package.json', import.meta.url)));

  it('refuses bad values in one line with the usage, and exits 2 before starting anything', async () => {
    for (const [args, line] of [
      [['--nats-mode', 'sometimes'], 'cluster: --nats-mode must be per-write or batched, got "sometimes"'],
      [['--transport', 'carrier-pigeon'], 'cluster: --transport must be one of plexus, nats, none, got "carrier-pigeon"'],
      [['--nodes', '0'], 'cluster: --nodes must be an integer from 1 to 32, got "0"'],
      [['--nodes', 'three'], 'cluster: --nodes must be an integer from 1 to 32, got "three"'],
    ] as const) {
      const r = await runCli(CLI, args);
      expect([r.code, r.err.split('\n')[0], r.out], args.join(' ')).toEqual([2, line, '']);
    }
  });
});

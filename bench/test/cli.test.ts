import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { versionOf } from '@replica/transport-api/cli';
import { cliConventions } from '@replica/transport-api/testing/cli';

const script = (name: string) => fileURLToPath(new URL(`../dist/${name}.js`, import.meta.url));
const version = versionOf(new URL('../package.json', import.meta.url));

describe('the bench commands keep the CLI conventions', () => {
  cliConventions(script('compare'), 'compare', version);
  cliConventions(script('ab'), 'compare:ab', version);
  cliConventions(script('ingest'), 'bench:ingest', version);
  cliConventions(script('replication'), 'bench:replication', version);
});

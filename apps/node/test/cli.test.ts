import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { versionOf } from '@replica/transport-api/cli';
import { cliConventions } from '@replica/transport-api/testing/cli';

const version = versionOf(new URL('../package.json', import.meta.url));

describe('the node commands keep the CLI conventions', () => {
  cliConventions(fileURLToPath(new URL('../dist/main.js', import.meta.url)), 'replica-node', version);
  cliConventions(fileURLToPath(new URL('../dist/main.js', import.meta.url)), 'replica-node', version, ['backup']);
  cliConventions(fileURLToPath(new URL('../dist/admin-cli.js', import.meta.url)), 'replica-admin', version);
});

import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { versionOf } from '@replica/transport-api/cli';
import { cliConventions } from '@replica/transport-api/testing/cli';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const version = versionOf(new URL('../package.json', import.meta.url));

describe('replica-certs keeps the CLI conventions, in each of its forms', () => {
  cliConventions(CLI, 'replica-certs', version);
  cliConventions(CLI, 'replica-certs', version, ['request']);
  cliConventions(CLI, 'replica-certs', version, ['sign']);
});

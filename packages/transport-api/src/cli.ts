import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** What a command line tool parses and how it describes itself. */
export interface CliSpec {
  /** The command's name, as users type it (`replica-certs`, `pnpm cluster`). */
  readonly name: string;
  /** The whole usage text, printed by `--help` and after a usage error. */
  readonly usage: string;
  /** The package.json whose version `--version` prints (`new URL('../package.json', import.meta.url)`). */
  readonly packageJson: URL;
  readonly options?: NonNullable<ParseArgsConfig['options']>;
  readonly allowPositionals?: boolean;
}

/** What was parsed; `V` is the caller's view of its options (parseArgs' defaults fill them in). */
export interface CliArgs<V = Readonly<Record<string, string | boolean | undefined>>> {
  readonly values: V;
  readonly positionals: readonly string[];
}

/**
 * Parses a command line the way every Replica command does: `-h`/`--help` prints the
 * usage and exits 0, `--version` prints `<name> <version>` and exits 0, and an unknown
 * or malformed option prints one line naming it and the usage, and exits 2. Never a
 * stack trace.
 */
export function parseCli<V = Readonly<Record<string, string | boolean | undefined>>>(spec: CliSpec, argv: readonly string[] = process.argv.slice(2)): CliArgs<V> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: spec.allowPositionals ?? false,
      options: { ...spec.options, help: { type: 'boolean', short: 'h', default: false }, version: { type: 'boolean', default: false } },
    });
  } catch (err) {
    usageError(spec, parseErrorMessage(err));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values['help']) {
    process.stdout.write(`${spec.usage}\n`);
    process.exit(0);
  }
  if (values['version']) {
    process.stdout.write(`${spec.name} ${versionOf(spec.packageJson)}\n`);
    process.exit(0);
  }
  return { values: values as V, positionals: parsed.positionals };
}

/** True for the errors `util.parseArgs` throws on a bad command line. */
export function isParseArgsError(err: unknown): boolean {
  return String((err as { code?: unknown } | null)?.code).startsWith('ERR_PARSE_ARGS');
}

/** A parseArgs error as one line (Node's advice on positionals starting with '-' is noise for these commands). */
export function parseErrorMessage(err: unknown): string {
  return (err as Error).message.replace(/\. To specify a positional argument[\s\S]*$/, '');
}

/** Prints `<name>: <message>` and the usage to stderr and exits 2. */
export function usageError(spec: Pick<CliSpec, 'name' | 'usage'>, message: string): never {
  process.stderr.write(`${spec.name}: ${message}\n${spec.usage}\n`);
  process.exit(2);
}

/** The `version` field of a package.json. */
export function versionOf(packageJson: URL): string {
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
}

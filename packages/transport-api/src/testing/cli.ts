import { execFile } from 'node:child_process';
import { expect, it } from 'vitest';

/** What a command printed and how it ended. */
export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs `node <script> ...args` with only PATH in its environment (and `env`); resolves when it exits. */
export function runCli(script: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 }, (error, out, err) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out, err }),
    );
  });
}

/**
 * The conventions every Replica command keeps, as tests: `-h`/`--help` prints the usage
 * (starting with `usage:`) and exits 0; `--version` prints `<name> <version>` and exits 0;
 * an unknown option prints one line naming it, then the usage, exits 2, and never a stack.
 * `prefix` are arguments before the option (a subcommand).
 */
export function cliConventions(script: string, name: string, version: string, prefix: readonly string[] = []): void {
  const label = [name, ...prefix].join(' ');
  it(`${label}: -h and --help print the usage and exit 0`, async () => {
    for (const flag of ['-h', '--help']) {
      const r = await runCli(script, [...prefix, flag]);
      expect([r.code, r.err], `${label} ${flag}`).toEqual([0, '']);
      expect(r.out).toMatch(/^usage:/);
    }
  });
  it(`${label}: --version prints the name and version and exits 0`, async () => {
    const r = await runCli(script, [...prefix, '--version']);
    expect([r.code, r.out, r.err]).toEqual([0, `${name} ${version}\n`, '']);
  });
  it(`${label}: an unknown option names it in one line, then the usage, and exits 2`, async () => {
    const r = await runCli(script, [...prefix, '--no-such-option']);
    expect(r.code).toBe(2);
    const [first, second] = r.err.split('\n');
    expect(first).toBe(`${name}: Unknown option '--no-such-option'`);
    expect(second).toMatch(/^usage:/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.out).toBe('');
  });
}

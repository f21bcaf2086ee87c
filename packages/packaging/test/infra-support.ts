// What the deployment-file tests share: where the files are, the environment variables a
// node reads, commands on this machine.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DockerfileParser, Env } from 'dockerfile-ast';
import { loadConfig, type Config } from '@replica/node';
import { ConfigError } from '@replica/transport-api';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const INFRA = `${ROOT}infra/`;

const run = promisify(execFile);

/** Whether `cmd` is on PATH (checked once, synchronously, so that a describe can be skipped by it). */
export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs a command; resolves to its stdout, and with `stderr: true` its stderr after it. On failure the error carries its whole output. */
export async function sh(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; stderr?: boolean } = {}): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
    return options.stderr === true ? stdout + stderr : stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/**
 * Every environment variable a node reads: the names `loadConfig` (apps/node/src/config.ts,
 * the only reader of the environment) looks up, recorded while it loads an empty
 * configuration for each transport. Taken from the code itself, so a variable renamed or
 * removed there is one the deployment files may no longer set.
 */
export function configVariables(): ReadonlySet<string> {
  const read = new Set<string>();
  for (const kind of ['none', 'plexus', 'nats']) {
    const env = new Proxy({} as Record<string, string | undefined>, {
      get: (_target, name) => {
        if (typeof name !== 'string') return undefined;
        read.add(name);
        return name === 'REPLICATION_TRANSPORT' ? kind : undefined;
      },
    });
    try {
      loadConfig(env);
    } catch (err) {
      // an empty plexus or nats configuration is incomplete; every variable was read by then
      if (!(err instanceof ConfigError)) throw err;
    }
  }
  return read;
}

/** The ENV the node image (the Dockerfile's last stage) sets: what every container of it starts with. */
export function imageEnv(): Record<string, string> {
  const df = DockerfileParser.parse(readFileSync(`${INFRA}docker/Dockerfile`, 'utf8'));
  const instructions = df.getInstructions();
  const lastFrom = instructions.map((i) => i.getKeyword()).lastIndexOf('FROM');
  const env: Record<string, string> = {};
  for (const i of instructions.slice(lastFrom)) {
    if (i instanceof Env) for (const p of i.getProperties()) env[p.getName()] = p.getValue() ?? '';
  }
  return env;
}

const FILE_PROBLEM = /^(TLS_CA|TLS_CERT|TLS_KEY|TLS_CA_KEY|NATS_TLS_CA|NATS_TLS_CERT|NATS_TLS_KEY): cannot read (.+)$/;

/**
 * What a node started with `env` in a container would load: the configuration, or every
 * problem it would report. A PEM file that exists only inside the container is no problem
 * when its path lies in one of `mounts` (the container's mounted directories); one outside
 * them is. (In the configuration returned, such paths are replaced by empty stand-ins.)
 */
export function containerConfig(env: Record<string, string>, mounts: readonly string[]): { config?: Config; problems: string[] } {
  try {
    return { config: loadConfig(env), problems: [] };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const problems = err.problems.filter((p) => {
      const m = FILE_PROBLEM.exec(p);
      return !(m && mounts.some((dir) => (m[2] as string).startsWith(`${dir.replace(/\/$/, '')}/`)));
    });
    if (problems.length > 0) return { problems };
    // only files that the mounts provide: load again with them readable, to see the configuration
    const readable = mkdtempSync(join(tmpdir(), 'replica-config-'));
    try {
      const local: Record<string, string> = { ...env };
      for (const p of err.problems) {
        const m = FILE_PROBLEM.exec(p) as RegExpExecArray;
        const copy = join(readable, (m[1] as string).toLowerCase());
        writeFileSync(copy, '');
        local[m[1] as string] = copy;
      }
      const config = loadConfig(local);
      return { config, problems: [] };
    } finally {
      rmSync(readable, { recursive: true, force: true });
    }
  }
}

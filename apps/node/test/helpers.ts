import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat, { type Family, type Sample } from 'parse-prometheus-text-format';
import { Store } from '@replica/storage';
import { loadConfig, type Config } from '../src/index.js';

export const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Transports the app tests run over; TEST_TRANSPORT pins one. */
export function transportsUnderTest(): readonly 'none'[] {
  const all = ['none'] as const;
  const pinned = process.env['TEST_TRANSPORT'];
  if (pinned === undefined || pinned === '') return all;
  if (!(all as readonly string[]).includes(pinned)) {
    throw new Error(`TEST_TRANSPORT=${pinned} is not one of ${all.join(', ')}`);
  }
  return [pinned as 'none'];
}

export function tempDir(prefix = 'replica-node-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', ...overrides });
}

export function openStore(dir: string, nodeName = 'standalone'): Store {
  return Store.open({ path: dir, nodeName, pruneIntervalMs: 0 });
}

/** A node started as its own process, as users run it. */
export interface NodeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `node dist/main.js` with `env` on a free port and resolves once it logs
 * that it listens. The process is killed if it does not come up in 15 s.
 */
export function startNode(env: Record<string, string>): Promise<NodeProcess> {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not start in 15 s:\n${out}`));
    }, 15_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"address":"(http:\/\/[^"]+)".*replica node listening/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1] as string, child, output: () => out, exited, kill: (s = 'SIGKILL') => void child.kill(s) });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited (${code}) before listening:\n${out}`));
    });
  });
}

/** Parses Prometheus text (throws on what is not); the families by name. */
export function families(text: string): Map<string, Family> {
  return new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
}

/** The sample of family `name` whose labels are exactly `labels`. */
export function sample(m: Map<string, Family>, name: string, labels: Record<string, string>): Sample | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return m.get(name)?.metrics.find((s) => JSON.stringify(Object.entries(s.labels ?? {}).sort()) === want);
}

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A server process started by the bench; always stopped by `stop()`. */
export interface Server {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `node <script>` with `env` and resolves once it prints a JSON log line with
 * `"address"` and "listening". Rejects (after killing it) if that takes over 20 s.
 */
export function startServer(script: string, env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not start within 20 s:\n${out}`));
    }, 20_000);
    const onData = (chunk: Buffer) => {
      if (out.length < 100_000) out += chunk.toString();
      const m = /"address":"(http:\/\/[^"]+)".*listening/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.removeListener('data', onData);
        child.stdout?.resume();
        resolve({ url: m[1] as string, pid: child.pid as number, child, stop });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c: Buffer) => {
      if (out.length < 100_000) out += c.toString();
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${script} exited before listening:\n${out}`));
    });
  });
}

const TICKS = 100; // USER_HZ on Linux

/** What /proc/…/stat says of a process or thread: its CPU seconds (user + system) so far, and when it started, in ticks since boot. */
export interface ProcStat {
  readonly cpuSec: number;
  readonly startTick: number;
}

/** Reads a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` file. */
export function readProcStat(path: string): ProcStat {
  const stat = readFileSync(path, 'utf8');
  // fields after the command name (which may hold spaces), from field 3 (state) on
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpuSec: (Number(fields[11]) + Number(fields[12])) / TICKS, startTick: Number(fields[19]) };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  return readProcStat(`/proc/${pid}/stat`).cpuSec;
}

/** Peak resident set size of a process so far, in bytes (VmHWM). */
export function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Runs a node script to completion and returns its last stdout line parsed as JSON. */
export function runJson<T>(script: string, arg: unknown, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`${script} exited with ${code}: ${out.slice(-2000)}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch (err) {
        reject(new Error(`${script} printed no JSON result: ${last.slice(0, 500)}`, { cause: err }));
      }
    });
  });
}

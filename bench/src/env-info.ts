import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

/** What a result was measured on: git sha, Node version, CPU, date. */
export function machineInfo(): Record<string, string | number> {
  let sha = 'unknown';
  try {
    sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim();
    if (dirty) sha += '-dirty';
  } catch {
    // not a git checkout
  }
  return {
    sha,
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    date: new Date().toISOString(),
  };
}

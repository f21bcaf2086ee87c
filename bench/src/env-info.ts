import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

/** What a result was measured on. */
export interface MachineInfo {
  /** Short commit of the checkout, `-dirty` if tracked files differ from it; `unknown` outside git. */
  readonly sha: string;
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  /** ISO 8601, when measured. */
  readonly date: string;
}

/** The git sha, Node version, CPU, memory and date of this measurement; never throws. */
export function machineInfo(): MachineInfo {
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

/** `<date>, sha <sha>, <cpu> (<cores> cores), Node <version>`: the machine in a report's header. */
export function machineLine(info: MachineInfo): string {
  return `${info.date}, sha ${info.sha}, ${info.cpu} (${info.cores} cores), Node ${info.node}`;
}

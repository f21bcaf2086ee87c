import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A size-limited filesystem mounted for a test: a disk that fills up. */
export interface TmpfsMount {
  /** Where it is mounted (an empty directory at first). */
  readonly dir: string;
  /** Its size in bytes, as last set. */
  readonly sizeBytes: number;
  /** Changes its size in place (`mount -o remount,size=`); files and open handles stay. */
  resize(bytes: number): void;
  /** Unmounts it and removes its directory; idempotent. Stop every process using it first. */
  unmount(): void;
}

let support: string | undefined | null = null;

/**
 * Why a tmpfs cannot be mounted here (not root, no mount(8), a container without the
 * capability), or undefined when it can: tried once per process with a 1 MiB mount.
 */
export function tmpfsUnavailable(): string | undefined {
  if (support !== null) return support;
  try {
    mountTmpfs(1024 * 1024).unmount();
    support = undefined;
  } catch (err) {
    support = `cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]}); these tests need root and mount(8)`;
  }
  return support;
}

/** Mounts a new tmpfs of `bytes` on a new directory under the system temp dir. */
export function mountTmpfs(bytes: number): TmpfsMount {
  const dir = mkdtempSync(join(tmpdir(), 'replica-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs failed: ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim()}`);
  }
  let size = bytes;
  let mounted = true;
  return {
    dir,
    get sizeBytes() {
      return size;
    },
    resize(next: number) {
      execFileSync('mount', ['-o', `remount,size=${next}`, dir], { stdio: 'pipe' });
      size = next;
    },
    unmount() {
      if (!mounted) return;
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        // still in use (a process that was not stopped): detach it now, freed once unused
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      mounted = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

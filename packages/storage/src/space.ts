import { statfsSync } from 'node:fs';
import { constants } from 'node:os';

/** Free and total bytes of the filesystem that holds a directory. */
export interface SpaceSample {
  /** Bytes an unprivileged writer may still use (`f_bavail`). */
  readonly freeBytes: number;
  readonly totalBytes: number;
}

/** Measures the filesystem of `path`; throws when it cannot. */
export type StatFs = (path: string) => SpaceSample;

export const statFs: StatFs = (path) => {
  const s = statfsSync(path);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
};

/**
 * The free-space floor of a store: below it, local writes are refused so that the last
 * of the disk goes to replication, retention and recovery. Either a fixed number of
 * bytes (0: no floor) or a share of the filesystem's size, optionally capped.
 */
export type MinFree = { readonly bytes: number } | { readonly share: number; readonly maxBytes?: number };

/** 5 % of the filesystem, at most 1 GiB. */
export const DEFAULT_MIN_FREE: MinFree = { share: 0.05, maxBytes: 1024 ** 3 };

/** The floor in bytes for a filesystem of `totalBytes` (0 when it cannot be measured and the floor is a share). */
export function minFreeBytes(policy: MinFree, totalBytes: number | undefined): number {
  if ('bytes' in policy) return policy.bytes;
  if (totalBytes === undefined) return 0;
  const share = Math.floor(totalBytes * policy.share);
  return policy.maxBytes === undefined ? share : Math.min(share, policy.maxBytes);
}

/** LMDB's error for a full memory map (lmdb-js grows the map by itself, so it means the map could not grow). */
export const MDB_MAP_FULL = -30792;

/**
 * Below this much free space, an I/O error from a commit counts as lack of space: LMDB
 * reports a short write (the filesystem filled up in the middle of it) as EIO, not ENOSPC.
 */
export const SHORT_WRITE_SLACK_BYTES = 1024 * 1024;

/**
 * Whether a failed commit's error (`code`: an errno, or a negative LMDB code) means the
 * store ran out of space rather than that storage failed: ENOSPC, EDQUOT, a full LMDB
 * map; or an I/O error, or an error whose code is unknown (lmdb-js does not always hand
 * it over), while the filesystem is (nearly) full.
 */
export function isLackOfSpace(code: unknown, sample: SpaceSample | undefined, floorBytes: number): boolean {
  const { ENOSPC, EDQUOT, EIO } = constants.errno;
  if (code === ENOSPC || code === EDQUOT || code === MDB_MAP_FULL) return true;
  if (code !== EIO && code !== undefined) return false;
  return sample !== undefined && sample.freeBytes < Math.max(floorBytes, SHORT_WRITE_SLACK_BYTES);
}

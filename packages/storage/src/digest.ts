import { hash } from 'node:crypto';
import type { Version } from '@replica/transport-api';

export const DIGEST_BYTES = 16;

/**
 * The order-independent digest of a table: the XOR of a 128-bit hash of every
 * (id, version) it holds, tombstones included. Two stores hold the same versions of
 * the same records exactly when their digests match (up to hash collisions), and the
 * digest is updated in O(1) per write by XOR-ing the old version out and the new in.
 */
export function recordHash(id: string, v: Version): Buffer {
  return hash('sha1', `${id}\u0000${v[0]}\u0000${v[1]}\u0000${v[2]}`, 'buffer').subarray(0, DIGEST_BYTES);
}

export function xorInto(acc: Buffer, h: Buffer): void {
  for (let i = 0; i < DIGEST_BYTES; i++) acc[i] = (acc[i] as number) ^ (h[i] as number);
}

import type { LiveConfirmation, LocalNode, PeerStatus } from './types.js';

/**
 * A peer's `lagEntries` and `lagMs` as {@link PeerStatus} defines them, from the seq of
 * this node's log it confirmed through: the entries after it, and the age of the oldest
 * of them by its version's wall time. `node` undefined (a stopped transport, whose store
 * may be closed) gives no lag.
 */
export function peerLag(node: LocalNode | undefined, ackedSeq: number, now: number = Date.now()): Pick<PeerStatus, 'lagEntries' | 'lagMs'> {
  const last = node?.lastSeq() ?? 0;
  if (!node || ackedSeq >= last) return { lagEntries: 0, lagMs: 0 };
  const oldest = node.readLog(ackedSeq + 1, 1)[0];
  return { lagEntries: last - ackedSeq, lagMs: oldest ? Math.max(0, now - oldest.version[0]) : 0 };
}

/**
 * How long this node's oldest own write that a peer has not confirmed has been waiting for
 * it: the age, by its version's wall time (as {@link PeerStatus.lagMs}), of own write
 * `ownApplied + 1` ({@link LiveConfirmation.ownApplied}); 0 when the peer confirmed every
 * own write up to `ownCursor` (this node's cursor for its own name). Only this node's own
 * writes count: an entry it relays for another origin may be old for reasons that are not
 * this peer's. An own write the log no longer holds (pruned) is older than anything it
 * holds: `Infinity`. A version can only be later than this node's wall clock (the hybrid
 * clock moves ahead of it after seeing a peer's later clock), never earlier, so clock skew
 * can make the age smaller than it is, not larger.
 */
export function ownWriteAge(node: Pick<LocalNode, 'name' | 'lastSeq' | 'seqOf' | 'readLog'>, ownCursor: number, ownApplied: number, now: number = Date.now()): number {
  if (ownApplied >= ownCursor) return 0;
  const seq = node.seqOf(node.name, ownApplied + 1);
  // Cursors show a commit a moment before the log reader does: a write that new is not old.
  if (seq !== undefined && seq > node.lastSeq()) return 0;
  const entry = seq === undefined ? undefined : node.readLog(seq, 1)[0];
  if (entry === undefined || entry.seq !== seq) return Number.POSITIVE_INFINITY;
  return Math.max(0, now - entry.version[0]);
}

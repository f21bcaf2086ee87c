import type { LocalNode, PeerStatus } from './types.js';

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

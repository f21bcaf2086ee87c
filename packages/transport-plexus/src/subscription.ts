import type { Cursors, LogEntry } from '@replica/transport-api';
import type { Subscription } from './frames.js';

/*
 * Who streams what to whom. A receiver subscribes at each of its peers to every origin
 * except itself and the other peers it is connected to (those stream their own writes
 * directly); so while it is cut off from an origin, every peer still connected to it
 * relays that origin's entries. Pure: no sockets, no store.
 */

/** A peer's {@link Subscription} as a sender serves it on one connection. */
export interface Selection {
  readonly exclude: ReadonlySet<string>;
  readonly cursors: Cursors;
  readonly recoverUntil: number;
  /** Highest originSeq sent per origin on this stream (starts at the receiver's cursors). */
  readonly sent: Map<string, number>;
}

/** What node `self` asks of one peer, given its cursors and the other peers it is connected to. */
export function subscriptionFor(self: string, cursors: Cursors, connectedOthers: readonly string[], peerHoldsOfMine: number): Subscription {
  const own = cursors[self] ?? 0;
  // The peer holds writes of this node that this node lost: ask for them back.
  const recoverUntil = peerHoldsOfMine > own ? peerHoldsOfMine : 0;
  return { cursors, exclude: [self, ...connectedOthers], recoverUntil };
}

/** Starts serving `sub`: nothing is sent yet above the receiver's cursors. */
export function selectionOf(sub: Subscription): Selection {
  return { exclude: new Set(sub.exclude), cursors: sub.cursors, recoverUntil: sub.recoverUntil, sent: new Map(Object.entries(sub.cursors)) };
}

/**
 * Cursors to hand to `logStart` for peer `peer`: origins it excludes count as fully
 * delivered (`mine`), and so does its own origin unless it asked to recover some.
 */
export function startCursors(peer: string, sel: Selection, mine: Cursors): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [origin, have] of Object.entries(mine)) {
    if (origin === peer) out[origin] = sel.recoverUntil > (sel.cursors[origin] ?? 0) ? (sel.cursors[origin] ?? 0) : have;
    else if (sel.exclude.has(origin)) out[origin] = have;
    else out[origin] = sel.cursors[origin] ?? 0;
  }
  return out;
}

/**
 * The entries of `entries` (log order) that `peer` subscribed to and that were not sent
 * on this stream yet, in log order: no excluded origin, of the peer's own writes only
 * those up to `recoverUntil`, and per origin only rising originSeqs above
 * {@link Selection.sent}. Does not record them as sent: see {@link markSent}.
 */
export function select(peer: string, sel: Selection, entries: readonly LogEntry[]): LogEntry[] {
  const out: LogEntry[] = [];
  const sent = new Map<string, number>();
  for (const e of entries) {
    const already = sent.get(e.origin) ?? sel.sent.get(e.origin) ?? 0;
    if (e.originSeq <= already) continue;
    if (e.origin === peer ? e.originSeq > sel.recoverUntil : sel.exclude.has(e.origin)) continue;
    sent.set(e.origin, e.originSeq);
    out.push(e);
  }
  return out;
}

/** Records `entries` (a result of {@link select}) as sent: no later select on this stream returns them again. */
export function markSent(sel: Selection, entries: readonly LogEntry[]): void {
  for (const e of entries) sel.sent.set(e.origin, e.originSeq);
}

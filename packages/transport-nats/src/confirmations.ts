import type { NatsConnection } from 'nats';
import { ConfirmationWaiters, decodeCursors, encodeCursors, type Cursors } from '@replica/transport-api';
import type { NatsContext } from './context.js';
import { ANNOUNCE_INTERVAL_MS, ANNOUNCE_REFRESH_MS } from './options.js';

/**
 * What each peer confirmed applying. Every node announces its cursors (how far it
 * applied each origin) to all others: soon after it applied something, and every
 * {@link ANNOUNCE_REFRESH_MS} in any case, so a node that restarted learns quiet
 * peers' cursors too. Announcements are validated by the cursor codec; a malformed
 * one is ignored.
 */
export class Confirmations {
  /** Per peer, the cursors it last announced. */
  readonly #peerCursors = new Map<string, Cursors>();
  /** Per peer, when its last announcement arrived (Date.now()). */
  readonly #heardAt = new Map<string, number>();
  /** Removed members: what they announce no longer counts as a replica. */
  #removed: ReadonlySet<string> = new Set();
  readonly #waiters = new ConfirmationWaiters();
  /** Peers learn this node's cursors at once, not at its next apply. */
  #dirty = true;
  #announcedAt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: NatsContext,
    /** Called with every peer that announced. */
    private readonly announced: (peer: string) => void,
  ) {}

  /** Takes in every peer's announcements until the connection closes. */
  listen(nc: NatsConnection): Promise<void> {
    const { names, log } = this.ctx;
    const sub = nc.subscribe(names.allApplied, {
      callback: (_err, msg) => {
        const from = names.announcer(msg.subject);
        if (from === names.node) return;
        let cursors: Cursors;
        try {
          cursors = decodeCursors(msg.data);
        } catch (err) {
          log.warn({ from, err: (err as Error).message }, 'nats: ignoring a malformed applied-cursors announcement');
          return;
        }
        this.#peerCursors.set(from, cursors);
        this.#heardAt.set(from, Date.now());
        this.#waiters.notify();
        this.announced(from);
      },
    });
    return sub.closed.then(() => {});
  }

  /** Announces this node's cursors from now on, until stop(). */
  announce(nc: NatsConnection): void {
    this.#timer = setInterval(() => this.#announce(nc), ANNOUNCE_INTERVAL_MS);
  }

  /** This node applied entries: announce soon. */
  applied(): void {
    this.#dirty = true;
  }

  #announce(nc: NatsConnection): void {
    const { node, names, lifecycle } = this.ctx;
    if (!lifecycle.started || nc.isClosed()) return;
    const now = Date.now();
    if (!this.#dirty && now - this.#announcedAt < ANNOUNCE_REFRESH_MS) return;
    this.#dirty = false;
    this.#announcedAt = now;
    nc.publish(names.ownApplied, encodeCursors(node.cursors()));
  }

  /** The cursors `peer` last announced ({} before any). */
  appliedThrough(peer: string): Cursors {
    return this.#peerCursors.get(peer) ?? {};
  }

  /** When `peer`'s last announcement arrived (Date.now()), or undefined if it never announced. */
  heardAt(peer: string): number | undefined {
    return this.#heardAt.get(peer);
  }

  /** The highest originSeq of this node's own writes `peer` announced applying (0 before any). */
  ownApplied(peer: string): number {
    return this.#peerCursors.get(peer)?.[this.ctx.node.name] ?? 0;
  }

  /** From now on, `removed` members are not counted by {@link waitForReplicas}. */
  exclude(removed: ReadonlySet<string>): void {
    this.#removed = removed;
    this.#waiters.notify();
  }

  /**
   * The highest seq of this node's log through which `peer` confirmed applying. A peer
   * takes only this node's own writes from this node's stream: it confirmed this log up
   * to just before the first own entry it has not applied (all of it when it applied
   * every own write).
   */
  ackedSeqOf(peer: string): number {
    const { node } = this.ctx;
    const confirmed = this.#peerCursors.get(peer)?.[node.name] ?? 0;
    if (confirmed >= (node.cursors()[node.name] ?? 0)) return node.lastSeq();
    const next = node.seqOf(node.name, confirmed + 1);
    return next === undefined ? 0 : next - 1;
  }

  /** Resolves with how many peers announced applying local entry `seq`, once `count` did, or after `timeoutMs`. */
  waitForReplicas(seq: number, count: number, timeoutMs: number): Promise<number> {
    const { node, lifecycle } = this.ctx;
    const originSeq = node.readLog(seq, 1)[0]?.originSeq ?? Number.POSITIVE_INFINITY;
    const confirmed = () => {
      let n = 0;
      for (const [peer, cursors] of this.#peerCursors) if (!this.#removed.has(peer) && (cursors[node.name] ?? 0) >= originSeq) n++;
      return n;
    };
    return this.#waiters.wait(confirmed, count, timeoutMs, () => lifecycle.started);
  }

  /** No more announcements; waits end with what was confirmed. */
  stop(): void {
    clearInterval(this.#timer);
    this.#waiters.notify();
  }
}

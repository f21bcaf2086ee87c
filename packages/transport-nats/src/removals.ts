import type { Member } from '@replica/transport-api';
import { isNotFound, type StreamAdmin } from './admin.js';
import type { Confirmations } from './confirmations.js';
import type { NatsContext } from './context.js';
import type { Discovery } from './discovery.js';
import type { OriginConsumer } from './origin-consumer.js';
import { ANNOUNCE_REFRESH_MS, CONSUMER_RETIRE_TIMEOUT_MS, GONE_RECHECK_MS, REMOVAL_CHECK_MS, REMOVED_SILENT_MS } from './options.js';

export interface RemovalDeps {
  readonly admin: StreamAdmin;
  readonly discovery: Discovery;
  readonly confirmations: Confirmations;
  /** Merges a snapshot of `source` into this node (a merge resync). */
  resyncFrom(source: string): Promise<void>;
}

/** What this node does about one removed member. */
interface Departure {
  /** When this node learned of the removal (Date.now()). */
  readonly learnedAt: number;
  /** The consumer that drains its stream while the stream holds entries this node has not applied. */
  drain: OriginConsumer | undefined;
  /** Its durable consumer on this node's stream was deleted. */
  consumerDeleted: boolean;
  /** Its stream no longer exists (deleted by the member that cleans up, or by this node). */
  streamGone: boolean;
  /** A merge resync of its writes is running (its stream was gone before this node applied all of it). */
  resyncing: boolean;
  /** When its stream was last looked for (Date.now()). */
  checkedAt: number;
}

/**
 * Carries out the member list's removals on this node. Guarantees:
 * - a removed member leaves the peer list at once: it is no longer counted as a replica
 *   and its stream is never consumed as a peer's again (also after a restart: the list is
 *   applied before the first discovery);
 * - no write it stored in its stream is lost: every active member keeps applying the
 *   stream (with a consumer outside the peer list) while it holds entries that member has
 *   not applied, and until the removed node finished shipping (it announced an own
 *   cursor the stream holds after it must have learned of its removal, fell silent for
 *   {@link REMOVED_SILENT_MS}, or `removalDrainMs` passed); only then is this node's
 *   durable consumer on the stream deleted, and the removed node's on this node's stream;
 * - its stream is deleted by one member, the lowest-named active one, once every active
 *   member announced applying all of it; idempotent, and repeated if the stream appears
 *   again;
 * - a member whose stream was already gone before it applied all of it (a node added
 *   later) merges a snapshot from an active member that applied more.
 * A node that learns it was removed itself stops consuming and deletes its own durable
 * consumers, and nothing else: its stream stays, and it keeps shipping and announcing, so
 * that the others can drain it.
 */
export class Removals {
  readonly #departures = new Map<string, Departure>();
  #active: readonly string[] = [];
  #selfRemoved = false;
  /** A removed node deleted its own durable consumers (once per removal). */
  #leftClean = false;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(
    private readonly ctx: NatsContext,
    private readonly deps: RemovalDeps,
    private readonly removalDrainMs: number,
  ) {}

  /** Applies the whole member list (this node included, removed members too). */
  apply(members: readonly Member[]): void {
    const { node, log } = this.ctx;
    const self = node.name;
    const removed = new Set(members.filter((m) => m.state === 'removed' && m.name !== self).map((m) => m.name));
    this.#active = members.filter((m) => m.state === 'active').map((m) => m.name).sort();
    const wasRemoved = this.#selfRemoved;
    this.#selfRemoved = members.some((m) => m.name === self && m.state === 'removed');
    if (!this.#selfRemoved) this.#leftClean = false;
    for (const [origin, d] of this.#departures) {
      if (removed.has(origin)) continue;
      // added again: discovery consumes it as a peer from now on
      d.drain?.stop();
      this.#departures.delete(origin);
    }
    for (const origin of removed) {
      if (!this.#departures.has(origin)) this.#departures.set(origin, { learnedAt: Date.now(), drain: undefined, consumerDeleted: false, streamGone: false, resyncing: false, checkedAt: 0 });
    }
    this.deps.confirmations.exclude(removed);
    for (const c of this.deps.discovery.exclude(removed, this.#selfRemoved)) {
      const d = this.#departures.get(c.origin);
      if (d && !this.#selfRemoved) {
        log.warn({ peer: c.origin }, 'nats: peer removed from the cluster; applying the rest of its stream before deleting this node\'s consumer on it');
        d.drain = c;
      } else {
        void this.#retire(c);
      }
    }
    if (this.#selfRemoved && !wasRemoved) {
      for (const d of this.#departures.values()) {
        if (d.drain) void this.#retire(d.drain);
        d.drain = undefined;
      }
      log.error({ node: self }, 'nats: this node was removed from the cluster; it consumes nothing, keeps its stream and ships what it has not shipped yet');
    }
    if (this.#departures.size > 0 || this.#selfRemoved) this.#schedule();
  }

  /** The removed members (this node excluded). */
  removed(): IterableIterator<string> {
    return this.#departures.keys();
  }

  /** Begins the periodic checks (after the first discovery). */
  start(): void {
    if (this.#departures.size > 0 || this.#selfRemoved) this.#schedule();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const d of this.#departures.values()) d.drain?.stop();
  }

  #schedule(): void {
    if (this.#timer || !this.ctx.lifecycle.started) return;
    this.#timer = setInterval(() => this.#checkSoon(), REMOVAL_CHECK_MS);
    this.#checkSoon();
  }

  #checkSoon(): void {
    if (this.#checking || !this.ctx.lifecycle.started) return;
    this.#checking = true;
    void this.#check()
      .catch((err: Error) => this.ctx.log.warn({ err: err.message }, 'nats: acting on a member removal failed; retrying'))
      .finally(() => (this.#checking = false));
  }

  async #check(): Promise<void> {
    if (this.#selfRemoved) return this.#leave();
    for (const [origin, d] of this.#departures) {
      if (!this.ctx.lifecycle.started) return;
      await this.#depart(origin, d);
    }
  }

  /** This node was removed: its durable consumers on every other stream go (once). */
  async #leave(): Promise<void> {
    if (this.#leftClean) return;
    const { admin } = this.deps;
    for (const { stream } of await admin.peerStreams()) await admin.deleteConsumer(stream, this.ctx.node.name);
    this.#leftClean = true;
    this.ctx.log.warn({ node: this.ctx.node.name }, 'nats: this removed node deleted its consumers on the other streams');
  }

  async #depart(origin: string, d: Departure): Promise<void> {
    const { node, names, log } = this.ctx;
    const { admin, confirmations } = this.deps;
    const stream = names.streamOf(origin);
    const mine = () => node.cursors()[origin] ?? 0;
    // a stream that is gone is looked for again now and then only (it may reappear)
    if (d.streamGone && Date.now() - d.checkedAt < GONE_RECHECK_MS) return this.#resyncIfBehind(origin, d);
    d.checkedAt = Date.now();
    let head: number;
    try {
      head = (await admin.head(stream)).originSeq;
      d.streamGone = false;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!d.streamGone) {
        d.streamGone = true;
        if (d.drain) await this.#retire(d.drain);
        d.drain = undefined;
        await this.#deleteTheirConsumer(origin, d);
      }
      return this.#resyncIfBehind(origin, d);
    }
    if (mine() < head) {
      // the stream holds entries this node has not applied: apply them first
      d.drain ??= this.deps.discovery.spawn(origin);
      return;
    }
    if (!this.#finishedShipping(origin, d, head)) return;
    if (d.drain) {
      await this.#retire(d.drain);
      d.drain = undefined;
      log.warn({ peer: origin, appliedThrough: mine() }, 'nats: applied all of a removed member\'s stream; deleted this node\'s consumer on it');
    }
    await this.#deleteTheirConsumer(origin, d);
    if (this.#active[0] !== node.name) return;
    // the lowest-named active member deletes the stream once every active member applied all of it
    const behind = this.#active.filter((m) => m !== node.name && (confirmations.appliedThrough(m)[origin] ?? 0) < head);
    if (behind.length > 0) return;
    if ((await admin.head(stream)).originSeq !== head) return; // it grew meanwhile: look again next time
    if (await admin.deleteStream(stream)) log.warn({ peer: origin, stream, head, members: this.#active }, 'nats: every active member applied all of a removed member\'s stream; deleted the stream');
    d.streamGone = true;
  }

  /**
   * Whether `origin` shipped every write it will ship to its stream, whose last entry is
   * `head`: it announced, at least one announcement interval after this node learned of
   * its removal (by then it knows too, and refuses writes), an own cursor the stream
   * holds; or it fell silent; or `removalDrainMs` passed since this node learned of it.
   */
  #finishedShipping(origin: string, d: Departure, head: number): boolean {
    const { confirmations } = this.deps;
    const now = Date.now();
    const heard = confirmations.heardAt(origin);
    if (heard === undefined || now - heard > REMOVED_SILENT_MS) return true;
    if (now - d.learnedAt > this.removalDrainMs) return true;
    return heard >= d.learnedAt + ANNOUNCE_REFRESH_MS && (confirmations.appliedThrough(origin)[origin] ?? 0) <= head;
  }

  /** The removed member's durable consumer on this node's stream (it may be gone for good). */
  async #deleteTheirConsumer(origin: string, d: Departure): Promise<void> {
    if (d.consumerDeleted) return;
    await this.deps.admin.deleteConsumer(this.ctx.names.ownStream, origin);
    d.consumerDeleted = true;
  }

  /** Its stream is gone but an active member applied more of it than this node: merge a snapshot from that member. */
  async #resyncIfBehind(origin: string, d: Departure): Promise<void> {
    const { node, log } = this.ctx;
    const { confirmations } = this.deps;
    if (d.resyncing) return;
    const mine = node.cursors()[origin] ?? 0;
    const source = this.#active.find((m) => m !== node.name && (confirmations.appliedThrough(m)[origin] ?? 0) > mine);
    if (!source) return;
    d.resyncing = true;
    log.warn({ peer: origin, source, cursor: mine, sourceCursor: confirmations.appliedThrough(source)[origin] }, 'nats: MERGE RESYNC: a removed member\'s stream is gone and this node lacks some of its writes; merging a snapshot');
    try {
      await this.deps.resyncFrom(source);
    } finally {
      d.resyncing = false;
    }
  }

  async #retire(c: OriginConsumer): Promise<void> {
    try {
      await c.retire(CONSUMER_RETIRE_TIMEOUT_MS);
    } catch (err) {
      this.ctx.log.warn({ peer: c.origin, err: (err as Error).message }, 'nats: cannot delete this node\'s consumer on a stream yet');
    }
  }
}

import { ConsumerEvents, type Consumer, type ConsumerMessages, type JetStreamClient, type JsMsg } from 'nats';
import { MalformedFrameError, decodeBatch, isStorageRefusal, untilWritable, type LogEntry } from '@replica/transport-api';
import type { StreamAdmin } from './admin.js';
import type { NatsContext } from './context.js';
import { CONSUMER_RETRY_MS, REPOSITION_MIN_INTERVAL_MS } from './options.js';
import { firstEntryAfter, streamSeqOf } from './stream-search.js';

/** What an origin's consumer needs besides the context. */
export interface ConsumerDeps {
  readonly js: JetStreamClient;
  readonly admin: StreamAdmin;
  /** Merges a snapshot of `source` into this node (a merge resync); rejects when the source cannot send one. */
  resyncFrom(source: string): Promise<void>;
  /** Every origin this node consumes (snapshot sources besides the origin itself). */
  origins(): Iterable<string>;
  /** Called after a batch applied entries. */
  applied(): void;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Applies one other node's stream to this node, through this node's durable pull
 * consumer on it: every entry once, in origin order, each fetched batch in one store
 * transaction before it is acknowledged. The consumer is positioned by what this node
 * has applied, not by what the broker remembers delivering, and a gap the stream cannot
 * fill is closed by a merge resync. When the store refuses writes (a full disk), the
 * consumer stops, acknowledging nothing it did not apply (the stream keeps the entries,
 * as for a slow consumer), waits until the store takes writes again, and starts over
 * from the cursor.
 */
export class OriginConsumer {
  #consumer: Consumer | undefined;
  #messages: ConsumerMessages | undefined;
  #running = false;
  /** Set when a gap was seen: the consumer is re-created at the cursor instead of nak-ing. */
  #reposition = true;
  #lastRepositionMs = 0;
  #loop: Promise<void> | undefined;
  /** Aborts a wait for the store to be writable again (stop()). */
  #hold: AbortController | undefined;
  /**
   * The most of its origin that the stream held (the last entry of its newest message)
   * when this consumer was last (re-)created; undefined before. See {@link PeerStatus.holds}.
   */
  holds: number | undefined;
  /** Totals since this process found the stream. */
  readonly counters = { messagesFetched: 0, entriesApplied: 0, entriesDeferred: 0, resyncs: 0, repositions: 0, consumersLost: 0, holds: 0 };
  /** As the broker last reported them. */
  readonly gauges = { consumerPending: 0, consumerAckPending: 0, consumerRedelivered: 0 };

  constructor(
    readonly origin: string,
    readonly stream: string,
    private readonly ctx: NatsContext,
    private readonly deps: ConsumerDeps,
  ) {}

  get running(): boolean {
    return this.#running;
  }

  /** Starts consuming, unless it runs. Returns the loop, which ends at stop(). */
  start(): Promise<void> | undefined {
    if (this.#running) return undefined;
    this.#running = true;
    const loop = this.#consume();
    this.#loop = loop;
    return loop;
  }

  stop(): void {
    this.#running = false;
    this.#messages?.stop();
    this.#hold?.abort();
  }

  /**
   * Stops consuming for good and deletes this node's durable consumer on the stream, once
   * the consume loop ended (else a loop still re-positioning would create it again). A
   * loop that does not end within `timeoutMs` leaves the consumer to the next call.
   */
  async retire(timeoutMs: number): Promise<void> {
    this.stop();
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([this.#loop?.then(() => true) ?? true, new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (!ended) throw new Error(`the consumer of ${this.stream} did not stop within ${timeoutMs} ms`);
    await this.deps.admin.deleteConsumer(this.stream, this.ctx.node.name);
    this.#consumer = undefined;
  }

  /** Reads the broker's view of this consumer into the gauges; does nothing while the broker is away. */
  async refresh(): Promise<void> {
    if (!this.#consumer) return;
    try {
      const ci = await this.#consumer.info(true);
      this.gauges.consumerPending = ci.num_pending;
      this.gauges.consumerAckPending = ci.num_ack_pending;
      // the broker's count for the current consumer: it starts again when the consumer is re-created
      this.gauges.consumerRedelivered = ci.num_redelivered;
    } catch (err) {
      this.ctx.log.debug({ origin: this.origin, err: (err as Error).message }, 'nats: cannot read the consumer state; the consume loop reports why');
    }
  }

  async #consume(): Promise<void> {
    const { node, cfg, lifecycle, log } = this.ctx;
    while (lifecycle.started && this.#running) {
      try {
        if (!this.#consumer || this.#reposition) {
          // a gap that re-positioning did not close (entries the stream never got) must not spin
          if (this.#consumer && Date.now() - this.#lastRepositionMs < REPOSITION_MIN_INTERVAL_MS) await pause(CONSUMER_RETRY_MS);
          this.#consumer = undefined;
          this.#lastRepositionMs = Date.now();
          await this.#position();
          this.#consumer = await this.deps.js.consumers.get(this.stream, node.name);
        }
        // consume() keeps pull requests open, so messages arrive as they are stored;
        // what arrived together is applied together, one batch at a time, in order.
        const messages = await this.#consumer.consume({ max_messages: cfg.fetchBatch, expires: cfg.fetchExpiresMs });
        this.#messages = messages;
        if (!lifecycle.started || !this.#running) return void messages.stop();
        void this.#watchLoss(messages);
        let buf: JsMsg[] = [];
        let chain: Promise<void> = Promise.resolve();
        let scheduled = false;
        // A failed batch stops this consumer (its unacknowledged messages come again
        // after ack_wait) and is rethrown below: never an unhandled rejection.
        let failure: { err: unknown } | undefined;
        const flush = async () => {
          const b = buf;
          buf = [];
          // after a gap, what is buffered comes again from the re-positioned consumer
          if (b.length === 0 || failure || this.#reposition) return;
          try {
            await this.#apply(b);
          } catch (err) {
            failure = { err };
            messages.stop();
          }
        };
        for await (const m of messages) {
          if (failure) break;
          buf.push(m);
          if (buf.length >= cfg.fetchBatch) {
            chain = chain.then(flush);
            await chain;
          } else if (!scheduled) {
            scheduled = true;
            setImmediate(() => {
              scheduled = false;
              chain = chain.then(flush);
            });
          }
        }
        await chain;
        if (failure) throw failure.err;
      } catch (err) {
        if (!lifecycle.started || !this.#running) return;
        if (isStorageRefusal(err)) {
          await this.#holdBack(err);
          continue;
        }
        log.warn({ origin: this.origin, err: (err as Error).message }, 'nats: consuming failed; retrying');
        this.#consumer = undefined;
        await pause(CONSUMER_RETRY_MS);
      }
    }
  }

  /**
   * The store refused this origin's entries: nothing after the last applied batch was
   * acknowledged, and the consumer stopped. Waits until the store takes writes again,
   * then has the consumer re-created at the cursor.
   */
  async #holdBack(err: Error): Promise<void> {
    const { node, log, stopped } = this.ctx;
    this.counters.holds++;
    this.#consumer = undefined;
    log.warn({ origin: this.origin, err: err.message }, 'nats: this node refuses writes; holding back the stream of this origin (nothing acknowledged, the stream keeps it) until it takes them again');
    const hold = (this.#hold = new AbortController());
    void stopped.then(() => hold.abort());
    const writable = await untilWritable(node, hold.signal);
    this.#hold = undefined;
    if (writable) log.info({ origin: this.origin }, 'nats: this node takes writes again; resuming the stream of this origin from its cursor');
  }

  /**
   * The client keeps asking for a consumer the broker no longer has (deleted by an
   * operator, or lost by a server restarted from a state that lacked it) and never ends
   * the iteration: it only reports the loss. Re-create it at the cursor instead.
   */
  async #watchLoss(messages: ConsumerMessages): Promise<void> {
    for await (const s of await messages.status()) {
      if (s.type !== ConsumerEvents.ConsumerNotFound && s.type !== ConsumerEvents.ConsumerDeleted && s.type !== ConsumerEvents.StreamNotFound) continue;
      if (this.#messages !== messages || !this.#running) return;
      this.ctx.log.warn({ origin: this.origin, event: s.type }, 'nats: the broker lost this node\'s consumer; re-creating it at the cursor');
      this.counters.consumersLost++;
      this.#reposition = true;
      messages.stop();
      return;
    }
  }

  /** Applies a fetched batch in one store transaction, then acknowledges what it covers. */
  async #apply(msgs: JsMsg[]): Promise<void> {
    const { node, log } = this.ctx;
    this.counters.messagesFetched += msgs.length;
    const decoded: { msg: JsMsg; entries: LogEntry[] }[] = [];
    for (const msg of msgs) {
      try {
        const entries = decodeBatch(msg.data);
        if (entries.some((e) => e.origin !== this.origin)) throw new MalformedFrameError(`message on ${this.stream} carries another origin`);
        decoded.push({ msg, entries });
      } catch (err) {
        log.error({ origin: this.origin, streamSeq: msg.seq, err: (err as Error).message }, 'nats: dropping a malformed message');
        msg.term();
      }
    }
    const r = await node.applyRemote(decoded.flatMap((d) => d.entries));
    this.counters.entriesApplied += r.applied;
    this.counters.entriesDeferred += r.deferred;
    const cursor = r.cursors[this.origin] ?? 0;
    // Acknowledge (AckAll) through the last message before the first one that is not
    // fully applied; that one and the rest come again, after the missing entries.
    let lastDone: JsMsg | undefined;
    let gap = false;
    for (const { msg, entries } of decoded) {
      const last = entries.at(-1);
      if (last && last.originSeq > cursor) {
        gap = true;
        break;
      }
      lastDone = msg;
    }
    lastDone?.ack();
    if (gap) {
      // A gap: what is missing was delivered before (to a process that died, or ahead
      // of a failed batch) and would come back only after ack_wait, while everything
      // after it would be nak-ed round after round. Re-create the consumer at the
      // cursor instead; if the stream no longer holds the gap, merge a snapshot first.
      await this.#resyncIfMissing(cursor);
      this.#reposition = true;
      this.#messages?.stop();
    }
    if (r.applied > 0) this.deps.applied();
  }

  /**
   * (Re-)creates this node's durable consumer so that delivery starts at the first
   * message holding an entry after this node's cursor (a restarted or wiped node, or
   * one that saw a gap).
   */
  async #position(): Promise<void> {
    const { node, log } = this.ctx;
    // What the stream holds now is what this node has caught up with once it applied it.
    this.holds = (await this.deps.admin.head(this.stream)).originSeq;
    const next = (node.cursors()[this.origin] ?? 0) + 1;
    const startSeq = await streamSeqOf(this.deps.admin.reader(this.stream), next);
    await this.deps.admin.recreateConsumer(this.stream, node.name, startSeq);
    this.#reposition = false;
    this.counters.repositions++;
    log.debug({ origin: this.origin, nextOriginSeq: next, startSeq }, 'nats: consumer positioned at the cursor');
  }

  /**
   * A gap that the stream cannot fill (its limits discarded the entries this node
   * needs, or it never got them: an origin whose own stream and log both lost entries
   * ships on after them) is closed by a merge resync from the origin, or else from any
   * other node.
   */
  async #resyncIfMissing(cursor: number): Promise<void> {
    const { node, log } = this.ctx;
    const next = await firstEntryAfter(this.deps.admin.reader(this.stream), cursor);
    if (!next || next.originSeq <= cursor + 1) return; // held (redelivery fills it), or not stored yet
    log.warn({ origin: this.origin, cursor, nextInStream: next.originSeq }, 'nats: MERGE RESYNC: the stream lacks entries this node has not applied; merging a snapshot');
    this.counters.resyncs++;
    const sources = [this.origin, ...[...this.deps.origins()].filter((n) => n !== this.origin)];
    for (const source of sources) {
      try {
        await this.deps.resyncFrom(source);
      } catch (err) {
        if (isStorageRefusal(err)) throw err; // this node cannot merge now: the consumer holds back
        log.warn({ origin: this.origin, source, err: (err as Error).message }, 'nats: snapshot source failed; trying the next');
        continue;
      }
      if ((node.cursors()[this.origin] ?? 0) + 1 >= next.originSeq) {
        log.warn({ origin: this.origin, source, cursor: node.cursors()[this.origin] }, 'nats: merge resync complete');
        return;
      }
    }
    log.error({ origin: this.origin }, 'nats: no node could resync this origin yet; will retry');
  }
}

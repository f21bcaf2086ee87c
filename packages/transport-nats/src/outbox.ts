import type { NatsConnection } from 'nats';
import { TransportStateError, Wakeup, encodeBatch, type LocalNode, type LogEntry } from '@replica/transport-api';
import type { StreamAdmin, StreamHead } from './admin.js';
import { AsyncPublisher, PublishRefusedError } from './async-publisher.js';
import type { NatsContext } from './context.js';
import { BROKER_FULL_RETRY_MS, OUTBOX_IDLE_MS, OUTBOX_RETRY_MS, PublishMode, READ_BATCH } from './options.js';
import { PubAckOrder } from './puback-order.js';

/** The retention hold of the outbox: own entries the stream does not hold yet stay in the log. */
const OUTBOX_HOLD = 'nats-outbox';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Ships this node's own log entries to its stream, in origin order, with no hole: the
 * stream holds a prefix of this node's writes at every moment. Entries leave the log's
 * retention hold only once the stream holds them, so a broker outage delays shipping
 * but loses no write; message ids make a retried publish stored once.
 */
export class Outbox {
  /** Totals since start(). */
  readonly counters = { published: 0, publishErrors: 0, messagesPublished: 0, ownEntriesSkipped: 0, brokerStorageFull: 0 };
  /** Since when the broker refuses this node's messages for lack of storage (ms since the epoch), if it does. */
  #brokerFullSince: number | undefined;
  readonly #wakeup = new Wakeup();
  /** Local seq → writers waiting for the stream to hold it, in commit order. */
  readonly #waiters = new Map<number, Waiter[]>();
  readonly #order = new PubAckOrder();
  /** Message id of the last message the stream stored, for the next publish's expectation. */
  #lastStoredId: string | undefined;
  /** The running publish loop's publisher, while run() runs. */
  #publisher: AsyncPublisher | undefined;

  constructor(private readonly ctx: NatsContext) {
    // Until the outbox knows what its stream holds, retention keeps the whole log.
    ctx.node.retainLog?.(OUTBOX_HOLD, 1);
  }

  /** The highest local seq the stream holds together with every own entry before it. */
  get shippedSeq(): number {
    return this.#order.shippedSeq;
  }

  /** Looks at the log again now (a commit). */
  wake(): void {
    this.#wakeup.wake();
  }

  /**
   * The broker connection came back (after an outage, or a reconnect for new TLS files):
   * PubAcks owed for earlier publishes will not come, so they fail now and the loop
   * rewinds to what the stream holds, instead of writers waiting for the publish timeout.
   */
  reconnected(): void {
    this.#publisher?.reset();
    this.#wakeup.wake();
  }

  /** Resolves once the stream holds local entry `seq` and every own entry before it; rejects if the transport stops first. */
  shipped(seq: number): Promise<void> {
    if (seq <= this.#order.shippedSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const list = this.#waiters.get(seq);
      if (list) list.push({ resolve, reject });
      else this.#waiters.set(seq, [{ resolve, reject }]);
    });
  }

  /**
   * Ships from what the stream holds (`head`) until the transport stops. A failed
   * publish rewinds to the first unacknowledged entry: each message expects the
   * previous one to be the stream's last, so after a failure every later one fails
   * too, and the stream never holds entries out of order.
   */
  async run(nc: NatsConnection, admin: StreamAdmin, head: StreamHead): Promise<void> {
    const { node, cfg, names, lifecycle, log } = this.ctx;
    const publisher = new AsyncPublisher(nc, cfg.publishTimeoutMs);
    this.#publisher = publisher;
    const batched = cfg.mode === PublishMode.batched;
    const readLimit = batched ? cfg.batchMaxEntries : READ_BATCH;
    this.#order.advance(head.originSeq, 0);
    this.#lastStoredId = head.msgId;
    let pos = this.#resumeAt();
    node.retainLog?.(OUTBOX_HOLD, pos);
    // Publishes awaiting their PubAck; a full window waits for one slot, not a race over all.
    const inflight = new Set<Promise<void>>();
    let onSlot: (() => void) | undefined;
    let failed = false;
    let prevId = this.#lastStoredId;
    const name = node.name;
    while (lifecycle.started) {
      if (failed) {
        await Promise.allSettled([...inflight]);
        failed = false;
        // A broker without storage is asked again once a second, whatever commits meanwhile.
        if (this.#brokerFullSince !== undefined) await Promise.race([new Promise((r) => setTimeout(r, BROKER_FULL_RETRY_MS)), this.ctx.stopped]);
        else await this.#wakeup.wait(OUTBOX_RETRY_MS);
        // Start again from what the stream really holds: acknowledgements may have
        // been lost for messages it stored.
        try {
          await this.#rewind(admin);
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'nats: cannot read the stream yet');
          failed = true;
          continue;
        }
        prevId = this.#lastStoredId;
        pos = this.#resumeAt();
        node.retainLog?.(OUTBOX_HOLD, pos);
        continue;
      }
      const entries = node.readLog(pos, readLimit);
      if (entries.length === 0) {
        await this.#wakeup.wait(OUTBOX_IDLE_MS);
        continue;
      }
      pos = (entries.at(-1) as LogEntry).seq + 1;
      const published = this.#order.publishedOriginSeq;
      const own = entries.filter((e) => e.origin === name && e.originSeq > published);
      if (own.length === 0) continue;
      const messages = batched ? chunk(own, cfg.batchMaxEntries, cfg.batchMaxBytes) : own.map((e) => [e]);
      for (const batch of messages) {
        while (inflight.size >= cfg.maxInFlight) await new Promise<void>((resolve) => (onSlot = resolve));
        if (failed || !lifecycle.started) break;
        const first = batch[0] as LogEntry;
        const last = batch.at(-1) as LogEntry;
        const id = names.messageId(first.originSeq, last.originSeq);
        const expected = prevId;
        prevId = id;
        const p: Promise<void> = publisher
          .publish(names.entries(first.table), encodeBatch(batch), id, expected)
          .then(() => {
            // stored, or a duplicate of one stored before: shipped either way
            if (this.#brokerFullSince !== undefined) {
              log.info({ refusedForMs: Date.now() - this.#brokerFullSince, originSeq: first.originSeq }, 'nats: the broker stores this node\'s writes again; shipping what waited in the log');
              this.#brokerFullSince = undefined;
            }
            this.counters.messagesPublished++;
            this.counters.published += batch.length;
            this.#lastStoredId = id;
            this.#acked(first.originSeq, last.originSeq, last.seq);
          })
          .catch((err: Error) => {
            if (err instanceof PublishRefusedError && err.storageFull) {
              this.counters.brokerStorageFull++;
              if (this.#brokerFullSince === undefined) {
                this.#brokerFullSince = Date.now();
                log.error(
                  { err: err.message, stream: names.ownStream, originSeq: first.originSeq },
                  'nats: the broker refuses this node\'s writes: JetStream storage is full on the server holding its stream (max_file_store, an account limit, or its disk). Writes still commit here and wait in the log (per-write answers 504 REPLICA_ERR_SHIP_TIMEOUT); they are shipped, in order, once the server has room',
                );
              }
            } else if (!failed) log.warn({ err: err.message, originSeq: first.originSeq }, 'nats: publish failed; retrying from the first unacknowledged entry');
            this.counters.publishErrors++;
            failed = true;
          })
          .finally(() => {
            inflight.delete(p);
            const wake = onSlot;
            onSlot = undefined;
            wake?.();
          });
        inflight.add(p);
      }
    }
    this.#publisher = undefined;
    publisher.close(); // rejects what is still waiting for a PubAck
    await Promise.allSettled([...inflight]);
  }

  /** Takes in what the stream holds beyond what was acknowledged. */
  async #rewind(admin: StreamAdmin): Promise<void> {
    const { node } = this.ctx;
    const head = await admin.ownHead();
    this.#lastStoredId = head.msgId;
    const published = this.#order.publishedOriginSeq;
    if (head.originSeq <= published) return;
    // shipped through the local seq just before the next own entry (the log's end without one)
    const next = node.seqOf(node.name, head.originSeq + 1);
    this.#acked(published + 1, head.originSeq, next === undefined ? node.lastSeq() : next - 1);
  }

  /** The stream stored own entries `first`…`last`, the last at local seq `seq`. */
  #acked(first: number, last: number, seq: number): void {
    this.#order.ack(first, last, seq);
    const shipped = this.#order.shippedSeq;
    // Retention may now prune what the stream holds, never what it still lacks.
    this.ctx.node.retainLog?.(OUTBOX_HOLD, shipped + 1);
    // Waiters are added in commit order, so the shipped ones are at the front.
    for (const [s, ws] of this.#waiters) {
      if (s > shipped) break;
      this.#waiters.delete(s);
      for (const w of ws) w.resolve();
    }
  }

  /** The local seq shipping resumes at: the first own entry the stream lacks. */
  #resumeAt(): number {
    const { node, log } = this.ctx;
    const published = this.#order.publishedOriginSeq;
    const own = node.cursors()[node.name] ?? 0;
    if (published >= own) return node.lastSeq() + 1;
    const next = node.seqOf(node.name, published + 1);
    if (next !== undefined) return next;
    // The stream lost own entries (its limits discarded them while this node was down)
    // that the log no longer holds either: nothing can ship them again. Ship on after
    // them; a peer that lacks them finds the hole in the stream and merges a snapshot
    // of this node, which holds their records.
    const oldest = oldestHeld(node, published + 2, own);
    const through = oldest === undefined ? own : oldest - 1;
    log.error(
      { lost: `${published + 1}..${through}` },
      'nats: own entries the stream lacks were pruned from the log; shipping resumes after them, and peers that lack them merge a snapshot',
    );
    this.counters.ownEntriesSkipped += through - published;
    const from = oldest === undefined ? node.lastSeq() + 1 : (node.seqOf(node.name, oldest) as number);
    this.#order.advance(through, from - 1);
    return from;
  }

  /** Lets retention prune what the outbox held. */
  release(): void {
    this.ctx.node.retainLog?.(OUTBOX_HOLD, undefined);
  }

  /** The transport stopped: the loop ends, and writers still waiting fail. */
  close(): void {
    this.#wakeup.wake();
    const err = new TransportStateError(this.ctx.lifecycle.kind, 'stopped', 'transport stopped before the broker acknowledged the write');
    for (const ws of this.#waiters.values()) for (const w of ws) w.reject(err);
    this.#waiters.clear();
  }
}

/**
 * The oldest of this node's own entries in `from`…`to` (origin sequences) that the log
 * still holds. Retention prunes the log from its front, so the own entries it holds
 * are the newest ones: a binary search over {@link LocalNode.seqOf}.
 */
function oldestHeld(node: LocalNode, from: number, to: number): number | undefined {
  if (from > to || node.seqOf(node.name, to) === undefined) return undefined;
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (node.seqOf(node.name, mid) === undefined) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Splits entries into messages of at most `maxEntries` entries and about `maxBytes` bytes. */
function chunk(entries: readonly LogEntry[], maxEntries: number, maxBytes: number): LogEntry[][] {
  const out: LogEntry[][] = [];
  let cur: LogEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    const size = 200 + JSON.stringify(e.value ?? null).length;
    if (cur.length > 0 && (bytes + size > maxBytes || cur.length >= maxEntries)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(e);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

import { createInbox, headers, type NatsConnection, type Subscription } from 'nats';
import { PUBACK_SWEEP_MS } from './options.js';
import { Header } from './subjects.js';

/** JetStream refused a publish (a PubAck with an error). */
export class PublishRefusedError extends Error {
  constructor(
    /** The status (503, 400, …). */
    readonly status: number,
    readonly description: string,
    /** JetStream's own code (`err_code`), when the server gave one. */
    readonly errCode: number | undefined,
  ) {
    super(`JetStream publish failed: ${status} ${description}${errCode !== undefined ? ` (err_code ${errCode})` : ''}`);
  }

  /**
   * The server has no storage left for the stream: its JetStream store reached
   * `max_file_store` (or the account's limit, or its disk is full). Retrying works once
   * an operator made room.
   */
  get storageFull(): boolean {
    return this.errCode === JS_INSUFFICIENT_RESOURCES || this.errCode === JS_STORAGE_RESOURCES_EXCEEDED || /insufficient (storage )?resources/i.test(this.description);
  }
}

/** JetStream's err_code for "insufficient resources" (a store at its limit). */
const JS_INSUFFICIENT_RESOURCES = 10023;
/** JetStream's err_code for "insufficient storage resources available". */
const JS_STORAGE_RESOURCES_EXCEEDED = 10047;

interface Pending {
  resolve(): void;
  reject(err: Error): void;
  readonly at: number;
}

/**
 * Publishes to JetStream without a request object per message: every publish carries
 * a reply subject under one shared inbox, PubAcks are matched by that subject, and one
 * sweep times out the stale ones (the shape of nats.go's PublishAsync). The client's
 * `js.publish` builds a request, an Error for its stack and a timer per message, which
 * at tens of thousands of messages a second costs more CPU than the write itself.
 */
export class AsyncPublisher {
  readonly #prefix = createInbox();
  readonly #pending = new Map<string, Pending>();
  readonly #sub: Subscription;
  readonly #sweep: NodeJS.Timeout;
  #next = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.#sub = nc.subscribe(`${this.#prefix}.*`, {
      callback: (_err, msg) => {
        const id = msg.subject.slice(this.#prefix.length + 1);
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        if (msg.headers?.code && msg.headers.code >= 400) return p.reject(new PublishRefusedError(msg.headers.code, msg.headers.description, undefined));
        try {
          const ack = msg.json<{ error?: { code: number; err_code?: number; description: string } }>();
          if (ack.error) p.reject(new PublishRefusedError(ack.error.code, ack.error.description, ack.error.err_code));
          else p.resolve();
        } catch (err) {
          p.reject(err as Error);
        }
      },
    });
    this.#sweep = setInterval(() => {
      const limit = Date.now() - this.timeoutMs;
      for (const [id, p] of this.#pending) {
        if (p.at > limit) break; // insertion order is age order
        this.#pending.delete(id);
        p.reject(new Error(`no PubAck within ${this.timeoutMs} ms`));
      }
    }, Math.min(PUBACK_SWEEP_MS, timeoutMs));
  }

  /**
   * Resolves when the stream stored the message (or had it already: a duplicate id).
   * With `expectedLastMsgId`, the stream refuses it unless its last message has that id.
   */
  publish(subject: string, data: Uint8Array, msgId: string, expectedLastMsgId?: string): Promise<void> {
    const id = (this.#next++).toString(36);
    const h = headers();
    h.set(Header.msgId, msgId);
    if (expectedLastMsgId !== undefined) h.set(Header.expectedLastMsgId, expectedLastMsgId);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, at: Date.now() });
      try {
        this.nc.publish(subject, data, { reply: `${this.#prefix}.${id}`, headers: h });
      } catch (err) {
        this.#pending.delete(id);
        reject(err as Error);
      }
    });
  }

  /**
   * The connection was re-established: PubAcks of what was published before are lost
   * (the server answered while this client was away), so every pending publish fails
   * now instead of at the timeout, and the caller republishes (ids make it idempotent).
   */
  reset(): void {
    for (const p of this.#pending.values()) p.reject(new Error('the connection was re-established before the PubAck came'));
    this.#pending.clear();
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#sub.unsubscribe();
    for (const p of this.#pending.values()) p.reject(new Error('publisher closed'));
    this.#pending.clear();
  }
}

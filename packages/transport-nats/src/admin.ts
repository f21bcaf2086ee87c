import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, nanos, type JetStreamManager } from 'nats';
import { Backoff, decodeBatch, type LogEntry, type Logger } from '@replica/transport-api';
import { DUPLICATE_WINDOW_MS, MAX_ACK_PENDING, START_RETRY_MAX_MS, START_RETRY_MIN_MS, type NatsConfig } from './options.js';
import type { StreamReader, StreamState } from './stream-search.js';
import { Header, type Names } from './subjects.js';

/**
 * Whether a JetStream API call failed because the stream, consumer or message does not
 * exist. The client turns every such answer of the server into code 404.
 */
export function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === '404';
}

/** The newest message of a node's stream: what the node's outbox continues after. */
export interface StreamHead {
  /** The highest own originSeq the stream holds (0 for an empty stream). */
  readonly originSeq: number;
  /** The id of the stream's last message, which the next publish expects; undefined for an empty stream. */
  readonly msgId: string | undefined;
}

/** A stream of another node, and that node. */
export interface PeerStream {
  readonly origin: string;
  readonly stream: string;
}

/** Stream and consumer administration, through the JetStream API. */
export class StreamAdmin {
  constructor(
    private readonly jsm: JetStreamManager,
    private readonly cfg: NatsConfig,
    private readonly names: Names,
  ) {}

  /** Creates this node's stream, or applies the configured limits to the one that exists. */
  async ensureOwnStream(): Promise<void> {
    const name = this.names.ownStream;
    const placement = this.cfg.placement;
    const config = {
      name,
      subjects: [this.names.ownSubjects],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(this.cfg.streamMaxAgeMs),
      max_bytes: this.cfg.streamMaxBytes,
      num_replicas: this.cfg.streamReplicas,
      duplicate_window: nanos(Math.min(DUPLICATE_WINDOW_MS, this.cfg.streamMaxAgeMs)),
      ...(placement ? { placement: { cluster: placement.cluster, tags: [placement.tag] } } : {}),
    };
    try {
      await this.jsm.streams.info(name);
      await this.jsm.streams.update(name, { max_age: config.max_age, max_bytes: config.max_bytes });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.jsm.streams.add(config);
    }
  }

  async state(stream: string): Promise<StreamState> {
    const { state } = await this.jsm.streams.info(stream);
    return { messages: state.messages, firstSeq: state.first_seq, lastSeq: state.last_seq };
  }

  /** The newest message of this node's stream. */
  ownHead(): Promise<StreamHead> {
    return this.head(this.names.ownStream);
  }

  /**
   * The newest message of `stream`: its last entry's originSeq is the most of its origin
   * that the stream holds (one message may carry many entries). Rejects with a
   * not-found error ({@link isNotFound}) when the stream does not exist.
   */
  async head(stream: string): Promise<StreamHead> {
    const { state } = await this.jsm.streams.info(stream);
    if (state.messages === 0) return { originSeq: 0, msgId: undefined };
    const last = await this.jsm.streams.getMessage(stream, { seq: state.last_seq });
    const entries = decodeBatch(last.data);
    return { originSeq: (entries.at(-1) as LogEntry).originSeq, msgId: last.header?.get(Header.msgId) || undefined };
  }

  /** Every other node's stream in the NATS cluster. */
  async peerStreams(): Promise<PeerStream[]> {
    const out: PeerStream[] = [];
    for await (const si of this.jsm.streams.list()) {
      const stream = si.config.name;
      const origin = this.names.originOf(stream);
      if (origin !== undefined && stream !== this.names.ownStream) out.push({ origin, stream });
    }
    return out;
  }

  /** Deletes `stream` and every consumer on it; true if it existed. */
  async deleteStream(stream: string): Promise<boolean> {
    try {
      return await this.jsm.streams.delete(stream);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Deletes the durable consumer `durable` on `stream`; true if it existed. */
  async deleteConsumer(stream: string, durable: string): Promise<boolean> {
    try {
      return await this.jsm.consumers.delete(stream, durable);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** The data of message `seq` of `stream`, or undefined when the stream does not hold it. */
  async message(stream: string, seq: number): Promise<Uint8Array | undefined> {
    try {
      return (await this.jsm.streams.getMessage(stream, { seq })).data;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The entries of message `seq` of `stream`, or undefined when the stream does not hold it. */
  async entries(stream: string, seq: number): Promise<LogEntry[] | undefined> {
    const data = await this.message(stream, seq);
    return data === undefined ? undefined : decodeBatch(data);
  }

  reader(stream: string): StreamReader {
    return { state: () => this.state(stream), entries: (seq) => this.entries(stream, seq) };
  }

  /**
   * (Re-)creates the durable consumer `durable` on `stream`, delivering from stream
   * sequence `startSeq` on, acknowledged per batch.
   */
  async recreateConsumer(stream: string, durable: string, startSeq: number): Promise<void> {
    try {
      await this.jsm.consumers.delete(stream, durable);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await this.jsm.consumers.add(stream, {
      durable_name: durable,
      // One ack per applied batch (it covers every earlier message) instead of one per message.
      ack_policy: AckPolicy.All,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
      ack_wait: nanos(this.cfg.ackWaitMs),
      max_ack_pending: MAX_ACK_PENDING,
    });
  }
}

/**
 * Runs a start-up step again (with backoff) until it succeeds, `open()` turns false, or
 * `timeoutMs` passed. A cluster that is still forming (no JetStream meta leader yet, as
 * when every server starts at once) answers with timeouts or 503s for a while.
 */
export async function whileStarting<T>(what: string, step: () => Promise<T>, o: { readonly timeoutMs: number; readonly open: () => boolean; readonly log: Logger }): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  const backoff = new Backoff(START_RETRY_MIN_MS, START_RETRY_MAX_MS);
  for (;;) {
    try {
      return await step();
    } catch (err) {
      if (!o.open() || Date.now() >= deadline) throw err;
      o.log.warn({ err: (err as Error).message, attempt: backoff.attempts + 1 }, `nats: ${what} failed; retrying`);
      await new Promise((r) => setTimeout(r, backoff.next()));
    }
  }
}

import { createInbox, type Msg, type NatsConnection } from 'nats';
import { SnapshotMerge, decodeCursors, decodeSnapshot, encodeCursors, encodeSnapshot, sendSnapshot, type Cursors, type SnapshotRecord, type SnapshotSink } from '@replica/transport-api';
import type { NatsContext } from './context.js';
import { SNAPSHOT_BATCH, SNAPSHOT_IDLE_MS, SNAPSHOT_SEND_TIMEOUT_MS } from './options.js';

/** The first byte of each snapshot message; the rest is its body. */
const Frame = { begin: 1, records: 2, end: 3 } as const;
type Frame = (typeof Frame)[keyof typeof Frame];

const NO_BODY = new Uint8Array(0);

/**
 * Merge resyncs over NATS. The receiver asks a source (a request on the source's
 * snapshot subject, carrying an inbox); the source answers at once, then sends begin
 * (cursors), record batches and end to that inbox, each as a request that the receiver
 * answers once it merged it: the receiver paces the transfer, and nothing of a
 * snapshot is held whole in memory on either side.
 */
export class ResyncCarrier {
  constructor(
    private readonly ctx: NatsContext,
    private readonly nc: NatsConnection,
  ) {}

  /** Serves every node that asks for a snapshot of this one, until the connection closes. */
  serve(): Promise<void> {
    const sub = this.nc.subscribe(this.ctx.names.ownSnapshot, {
      callback: (_err, msg) => void this.#serve(msg).catch((err: Error) => this.ctx.log.warn({ err: err.message }, 'nats: serving a snapshot failed')),
    });
    return sub.closed.then(() => {});
  }

  async #serve(req: Msg): Promise<void> {
    const { node, lifecycle, log } = this.ctx;
    const to = new TextDecoder().decode(req.data);
    if (!req.reply || !/^[!-~]+$/.test(to)) return; // not a snapshot request of ours
    req.respond();
    log.warn({ to }, 'nats: serving a merge resync snapshot');
    await sendSnapshot(node, SNAPSHOT_BATCH, new InboxSink(this.nc, to), () => lifecycle.started);
  }

  /**
   * Merges a snapshot of `source` into this node; this node's cursors rise only once all
   * of it is merged. Rejects when the source is not there, falls silent for
   * {@link SNAPSHOT_IDLE_MS}, sends something malformed, or the transport stops.
   */
  async request(source: string): Promise<void> {
    const { nc } = this;
    const { node, names, log, stopped } = this.ctx;
    const merge = new SnapshotMerge(node);
    const inbox = createInbox();
    // The source paces its messages by our answers: silence means it is gone (or never
    // answered), whatever the size of the transfer.
    let timer: NodeJS.Timeout | undefined;
    let onIdle: (err: Error) => void = () => {};
    const idle = new Promise<never>((_, reject) => (onIdle = reject));
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => onIdle(new Error(`no snapshot message from ${source} for ${SNAPSHOT_IDLE_MS / 1000} s`)), SNAPSHOT_IDLE_MS);
    };
    const sub = nc.subscribe(inbox);
    const done = (async () => {
      for await (const m of sub) {
        clearTimeout(timer);
        const frame = m.data[0];
        const body = m.data.subarray(1);
        if (frame === Frame.begin) merge.begin(decodeCursors(body));
        else if (frame === Frame.records) await merge.records(decodeSnapshot(body));
        else if (frame === Frame.end) {
          await merge.end();
          m.respond();
          return;
        }
        m.respond();
        arm();
      }
      throw new Error('snapshot subscription closed');
    })();
    // Once the race below is decided (idle, stopped), unsubscribing ends this loop with an error nobody awaits.
    done.catch((err: Error) => log.debug({ source, err: err.message }, 'nats: snapshot transfer ended'));
    try {
      // A request, so a source that is not there is known at once: the server answers
      // "no responders" instead of leaving us to wait for silence.
      try {
        await nc.request(names.snapshotOf(source), new TextEncoder().encode(inbox), { timeout: SNAPSHOT_IDLE_MS });
      } catch (err) {
        const code = (err as { code?: string }).code;
        throw new Error(code === '503' ? `${source} is not connected (no responders)` : `${source} did not accept the snapshot request: ${(err as Error).message}`);
      }
      arm();
      await Promise.race([done, idle, stopped.then(() => Promise.reject(new Error('stopped')))]);
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
  }
}

/** Sends a snapshot to a receiver's inbox, one request per message, each answered once merged. */
class InboxSink implements SnapshotSink {
  constructor(
    private readonly nc: NatsConnection,
    private readonly to: string,
  ) {}

  begin(cursors: Cursors): Promise<void> {
    return this.#send(Frame.begin, encodeCursors(cursors));
  }

  records(batch: readonly SnapshotRecord[]): Promise<void> {
    return this.#send(Frame.records, encodeSnapshot(batch));
  }

  end(): Promise<void> {
    return this.#send(Frame.end, NO_BODY);
  }

  async #send(frame: Frame, body: Uint8Array): Promise<void> {
    const data = new Uint8Array(body.length + 1);
    data[0] = frame;
    data.set(body, 1);
    await this.nc.request(this.to, data, { timeout: SNAPSHOT_SEND_TIMEOUT_MS });
  }
}

import type { TLSSocket } from 'node:tls';
import { MalformedFrameError, Wakeup, encodeBatch, sendSnapshot, type Cursors, type LogEntry, type LogStart, type SnapshotRecord, type SnapshotSink } from '@replica/transport-api';
import { Frame, encodeBatchFrame, encodeControl, encodeSnapshotFrame, type Subscription } from './frames.js';
import type { PlexusConfig } from './options.js';
import type { Session } from './session.js';
import { markSent, select, selectionOf, startCursors, type Selection } from './subscription.js';

/** A batch frame sent and not yet acknowledged. */
interface InFlight {
  readonly lastSeq: number;
  readonly bytes: number;
  /** Highest originSeq per origin in the frame. */
  readonly origins: ReadonlyMap<string, number>;
}

/**
 * Streams this node's log to the peer of one session, as the peer's latest subscription
 * asks: entries in log order (so each origin's in origin order), none twice on one
 * subscription, at most `maxInFlightFrames` / `maxInFlightBytes` unacknowledged and
 * never into a full socket buffer. When the log no longer holds what the peer needs, it
 * sends a merge-resync snapshot instead. Acknowledgements are cumulative: they raise the
 * link's `ackedSeq` and, per origin, `appliedThrough`.
 */
export class Sender {
  #selection: Selection | undefined;
  #restart = false;
  #pos = 1;
  /** Entries to read per batch; shrinks when batches come out larger than batchMaxBytes. */
  #readSize: number;
  #inflight: InFlight[] = [];
  #inflightBytes = 0;
  readonly #wakeup = new Wakeup();
  readonly #config: PlexusConfig;

  constructor(private readonly session: Session) {
    this.#config = session.host.config;
    this.#readSize = this.#config.batchMaxEntries;
  }

  get inFlightBytes(): number {
    return this.#inflightBytes;
  }

  /** Something changed (new entries, an ack, a drained socket, the session closed): look again. */
  wake(): void {
    this.#wakeup.wake();
  }

  /** The peer (re)subscribed: the stream starts over from its cursors. */
  subscribe(sub: Subscription): void {
    this.#selection = selectionOf(sub);
    this.#restart = true;
    this.wake();
  }

  /** The peer applied every frame through log seq `seq` (cumulative). */
  acked(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new MalformedFrameError('ack is not a sequence number');
    const link = this.session.link;
    const inflight = this.#inflight;
    while (inflight.length > 0 && (inflight[0] as InFlight).lastSeq <= seq) {
      const done = inflight.shift() as InFlight;
      this.#inflightBytes -= done.bytes;
      for (const [origin, n] of done.origins) {
        if (n > (link.appliedThrough.get(origin) ?? 0)) link.appliedThrough.set(origin, n);
      }
    }
    // Ranges that carried nothing for this peer count as confirmed once all before them are.
    while (inflight.length > 0 && (inflight[0] as InFlight).bytes === 0) {
      seq = Math.max(seq, (inflight.shift() as InFlight).lastSeq);
    }
    if (seq > link.ackedSeq) link.ackedSeq = seq;
    this.wake();
    this.session.host.confirmed();
  }

  /** The send loop; ends when the session closes. Never rejects: a failure is logged and closes the connection. */
  async run(): Promise<void> {
    const { session } = this;
    try {
      await this.#pump();
    } catch (err) {
      if (session.closed) return;
      session.host.log.error({ peer: session.link.name, err: (err as Error).message }, 'plexus: sending failed; closing the connection');
      session.socket.destroy();
    }
  }

  async #pump(): Promise<void> {
    const { session } = this;
    const { link, socket } = session;
    const { node } = session.host;
    const config = this.#config;
    while (!session.closed) {
      const sel = this.#selection;
      if (!sel) {
        await this.#wakeup.wait();
        continue;
      }
      if (this.#restart) {
        this.#restart = false;
        this.#readSize = config.batchMaxEntries;
        this.#inflight = [];
        this.#inflightBytes = 0;
        const start = node.logStart(startCursors(link.name, sel, node.cursors()));
        if (start.kind === 'resync') {
          await this.#resync(start);
          continue;
        }
        this.#pos = start.fromSeq;
      }
      if (this.#inflight.length >= config.maxInFlightFrames || this.#inflightBytes >= config.maxInFlightBytes || socket.writableNeedDrain) {
        await this.#wakeup.wait();
        continue;
      }
      const entries = node.readLog(this.#pos, this.#readSize);
      if (entries.length === 0) {
        await this.#wakeup.wait();
        continue;
      }
      const out = select(link.name, sel, entries);
      const batch = out.length > 0 ? encodeBatch(out) : undefined;
      if (batch && batch.length > config.batchMaxBytes && entries.length > 1) {
        // Too big for one frame: read fewer entries (the window check then applies per frame).
        this.#readSize = Math.max(1, entries.length >> 1);
        continue;
      }
      const lastSeq = (entries.at(-1) as LogEntry).seq;
      this.#pos = lastSeq + 1;
      markSent(sel, out);
      if (!batch) {
        if (this.#inflight.length === 0) this.acked(lastSeq);
        else this.#inflight.push({ lastSeq, bytes: 0, origins: new Map() });
        continue;
      }
      if (batch.length < config.batchMaxBytes / 4) this.#readSize = Math.min(config.batchMaxEntries, this.#readSize * 2);
      this.#sendBatch(out, lastSeq, batch);
    }
  }

  #sendBatch(entries: readonly LogEntry[], lastSeq: number, batch: Uint8Array): void {
    const link = this.session.link;
    const origins = new Map<string, number>();
    for (const e of entries) origins.set(e.origin, e.originSeq);
    const frame = encodeBatchFrame(lastSeq, batch);
    this.#inflight.push({ lastSeq, bytes: frame.length, origins });
    this.#inflightBytes += frame.length;
    if (this.#inflightBytes > link.inFlightBytesPeak) link.inFlightBytesPeak = this.#inflightBytes;
    link.counters.entriesSent += entries.length;
    link.counters.batchesSent++;
    this.session.send(frame);
  }

  /** The peer needs entries this log no longer holds: send it a snapshot to merge. */
  async #resync(start: Extract<LogStart, { kind: 'resync' }>): Promise<void> {
    const { session } = this;
    const { link, host } = session;
    link.counters.resyncsSent++;
    this.#selection = undefined; // the peer subscribes again once it merged
    host.log.warn(
      { peer: link.name, origin: start.origin, needed: start.needed, oldestRetained: start.oldest },
      'plexus: MERGE RESYNC of peer: it needs entries this node pruned; sending a snapshot',
    );
    const sent = await sendSnapshot(host.node, this.#config.snapshotBatch, new SnapshotFrames(session), () => !session.closed);
    if (sent.complete) host.log.warn({ peer: link.name, records: sent.records }, 'plexus: merge resync snapshot sent');
  }
}

/** A merge-resync snapshot as frames on a session: resyncBegin, snapshot…, resyncEnd; paced by the socket's buffer. */
class SnapshotFrames implements SnapshotSink {
  constructor(private readonly session: Session) {}

  begin(cursors: Cursors): void {
    this.session.send(encodeControl(Frame.resyncBegin, { cursors }));
  }

  records(batch: readonly SnapshotRecord[]): void | Promise<void> {
    if (!this.session.send(encodeSnapshotFrame(batch))) return writable(this.session.socket);
  }

  end(cursors: Cursors): void {
    this.session.send(encodeControl(Frame.resyncEnd, { cursors }));
  }
}

/** Resolves when `socket` drained its buffer or closed. */
function writable(socket: TLSSocket): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}

import { MalformedFrameError, SnapshotMerge, decodeBatch, isStorageRefusal, untilWritable } from '@replica/transport-api';
import { Frame, decodeCursorsMessage, decodeSnapshotFrame, encodeNumberFrame, splitBatchFrame, type RawFrame } from './frames.js';
import type { Session } from './session.js';

/** Receiver backpressure: the socket stops being read while more frames than this wait to be applied… */
export const PAUSE_ABOVE_QUEUED_FRAMES = 8;
/** …and is read again once no more than this many wait. */
export const RESUME_AT_QUEUED_FRAMES = 2;

/**
 * Applies what the peer of one session streams, one frame at a time in arrival order,
 * and one receiver per peer at a time (a newer connection's frames wait until the
 * previous connection's apply finished). A batch is acknowledged only once applied; a
 * batch with a gap in an origin's sequence is not acknowledged and the peer is asked
 * for a fresh stream instead. A merge-resync snapshot raises this node's cursors only
 * when it arrived whole.
 *
 * When the store refuses writes (a full disk), the receiver holds the stream back: it
 * drops what arrives without applying or acknowledging it, so the peer's window fills
 * and it stops sending (it keeps the entries, as for a slow peer); the connection stays
 * up. Once the store is writable again it asks the peer for a fresh stream from this
 * node's cursors.
 */
export class Receiver {
  readonly #queue: RawFrame[] = [];
  readonly #merge: SnapshotMerge;
  /** The store refused writes: data frames are dropped until it is writable again. */
  #held = false;
  /** After a hold: resync frames are dropped until another frame shows the peer started anew. */
  #staleResync = false;

  constructor(private readonly session: Session) {
    this.#merge = new SnapshotMerge(session.host.node);
  }

  push(f: RawFrame): void {
    if (this.#held) return;
    if (this.#staleResync) {
      if (f.type === Frame.snapshot || f.type === Frame.resyncEnd) return;
      this.#staleResync = false;
    }
    this.#queue.push(f);
    if (this.#queue.length > PAUSE_ABOVE_QUEUED_FRAMES) this.session.socket.pause();
    this.kick();
  }

  /** Starts applying what is queued, unless a receiver of this peer is applying already. */
  kick(): void {
    if (this.#queue.length > 0 && this.session.link.applying === undefined) void this.#applyLoop();
  }

  /** Drops what is queued: the session closed. */
  close(): void {
    this.#queue.length = 0;
  }

  async #applyLoop(): Promise<void> {
    const { session } = this;
    const { link, socket } = session;
    link.applying = this;
    try {
      while (!session.closed && this.#queue.length > 0) {
        const f = this.#queue.shift() as RawFrame;
        if (this.#queue.length <= RESUME_AT_QUEUED_FRAMES && socket.isPaused()) socket.resume();
        await this.#apply(f);
      }
    } catch (err) {
      if (err instanceof MalformedFrameError) session.protocolError(err);
      else if (isStorageRefusal(err)) this.#hold(err);
      else if (!session.closed) {
        session.host.log.error({ peer: link.name, err: (err as Error).message }, 'plexus: applying a batch failed; closing the connection');
        socket.destroy();
      }
    } finally {
      link.applying = undefined;
      if (!session.closed && socket.isPaused()) socket.resume();
      // A newer connection may have queued frames while this loop held the turn.
      link.session?.receiver.kick();
    }
  }

  /**
   * The store refused what this peer sent: acknowledge nothing more, drop what is queued
   * and what arrives, and once the store is writable again, subscribe from the cursors.
   */
  #hold(err: Error): void {
    const { session } = this;
    const { link, host } = session;
    if (session.closed) return;
    this.#held = true;
    this.#queue.length = 0;
    // A resync in progress, queued or still on the wire is cut short: its cursors must
    // not be adopted, and its remaining frames are dropped until the peer starts anew.
    this.#merge.abandon();
    this.#staleResync = true;
    link.counters.holds++;
    host.log.warn({ peer: link.name, err: err.message }, 'plexus: this node refuses writes; holding back the stream of the peer (nothing acknowledged) until it takes them again');
    const closed = new AbortController();
    const onClose = () => closed.abort();
    session.socket.once('close', onClose);
    void untilWritable(host.node, closed.signal).then((writable) => {
      session.socket.off('close', onClose);
      this.#held = false;
      if (!writable || session.closed) return;
      host.log.info({ peer: link.name }, 'plexus: this node takes writes again; resuming the stream of the peer from its cursors');
      host.subscribe(session);
    });
  }

  async #apply(f: RawFrame): Promise<void> {
    const { session } = this;
    const { link, host } = session;
    const { node } = host;
    switch (f.type) {
      case Frame.batch: {
        const { lastSeq, batch } = splitBatchFrame(f.payload);
        const entries = decodeBatch(batch);
        link.counters.batchesReceived++;
        const r = await node.applyRemote(entries);
        link.counters.entriesApplied += r.applied;
        link.counters.entriesSkipped += r.skipped;
        if (session.closed) return;
        if (r.deferred > 0) {
          // A gap: ask for a fresh stream from our cursors instead of confirming.
          link.counters.entriesDeferred += r.deferred;
          this.#queue.length = 0;
          host.subscribe(session);
          return;
        }
        session.send(encodeNumberFrame(Frame.ack, lastSeq));
        return;
      }
      case Frame.resyncBegin: {
        const cursors = decodeCursorsMessage(f.payload);
        link.counters.resyncsReceived++;
        host.log.warn({ peer: link.name, theirCursors: cursors, ourCursors: node.cursors() }, 'plexus: MERGE RESYNC from peer: our cursors fell behind its retained log');
        await this.#merge.begin(cursors);
        return;
      }
      case Frame.snapshot:
        await this.#merge.records(decodeSnapshotFrame(f.payload));
        return;
      case Frame.resyncEnd: {
        await this.#merge.end(decodeCursorsMessage(f.payload));
        host.log.warn({ peer: link.name, cursors: node.cursors() }, 'plexus: merge resync complete');
        if (!session.closed) host.subscribe(session);
        return;
      }
      default:
        throw new MalformedFrameError(`unexpected frame type ${f.type}`);
    }
  }
}

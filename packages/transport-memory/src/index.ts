import { ConfirmationWaiters, Lifecycle, SnapshotMerge, TransportStateError, Wakeup, isStorageRefusal, peerLag, sendSnapshot, untilWritable } from '@replica/transport-api';
import type { LiveConfirmation, LocalNode, LogEntry, PeerStatus, ReplicationTransport, StartOptions, TransportState, TransportStatus } from '@replica/transport-api';

/**
 * An in-process "network" that memory transports join by node name. It is the
 * reference implementation of the transport contract: it proves the compliance
 * suite and lets app tests run several nodes in one process. It is not a stand-in
 * for the real transports in their own tests.
 */
export class MemoryNetwork {
  /** @internal */
  readonly members = new Map<string, MemoryTransport>();
}

export interface MemoryTransportInit {
  readonly network: MemoryNetwork;
  /** Entries per delivered batch. Default 256. */
  readonly batchSize?: number;
}

/** Creates a transport that replicates through `init.network`. */
export function memoryTransport(init: MemoryTransportInit): ReplicationTransport {
  return new MemoryTransport(init);
}

/** Records per batch of a merge resync. */
const SNAPSHOT_BATCH = 512;

/** One outgoing link: streams this node's log to one peer. */
class Link {
  ackedSeq = 0;
  batches = 0;
  entries = 0;
  /** The peer's cursors as its last applied batch left them. */
  appliedThrough: Readonly<Record<string, number>> = {};
  readonly #wakeup = new Wakeup();
  /** Aborted by stop(): ends a wait for the peer's store to take writes again. */
  readonly #stop = new AbortController();
  stopped = false;
  /** Times the peer's store refused a batch and the link held back until it took writes again. */
  holds = 0;
  readonly done: Promise<void>;

  constructor(
    readonly from: MemoryTransport,
    readonly to: MemoryTransport,
    private readonly batchSize: number,
  ) {
    this.done = this.#run();
  }

  poke(): void {
    this.#wakeup.wake();
  }

  stop(): void {
    this.stopped = true;
    this.#stop.abort();
    this.poke();
  }

  /**
   * Entries the peer itself wrote are sent back only if it lost them: those above its
   * own cursor at connect time, up to what this node holds of its origin.
   */
  #recover = { from: 0, to: 0 };

  async #run(): Promise<void> {
    const local = this.from.node as LocalNode;
    let pos = await this.#startPositionWhenWritable();
    while (!this.stopped && pos !== undefined) {
      const batch = local.readLog(pos, this.batchSize);
      if (batch.length === 0) {
        await this.#wakeup.wait();
        continue;
      }
      const last = (batch.at(-1) as LogEntry).seq;
      const { from, to } = this.#recover;
      const payload = batch.filter((e) => e.origin !== this.to.name || (e.originSeq > from && e.originSeq <= to));
      // Deliver on a later turn, as a network would.
      await new Promise((r) => setImmediate(r));
      if (this.stopped || !this.to.node) return;
      let result;
      try {
        result = payload.length > 0 ? await this.to.node.applyRemote(payload) : undefined;
      } catch (err) {
        if (!isStorageRefusal(err)) throw err;
        // The peer's store refuses writes (a full disk): nothing is acknowledged; once it
        // takes them again, stream from its cursors.
        this.holds++;
        if (!(await untilWritable(this.to.node, this.#stop.signal))) return;
        pos = await this.#startPositionWhenWritable();
        continue;
      }
      this.batches++;
      this.entries += payload.length;
      if (result) this.appliedThrough = result.cursors;
      if (result && result.deferred > 0) {
        pos = await this.#startPositionWhenWritable();
        continue;
      }
      this.ackedSeq = Math.max(this.ackedSeq, last);
      this.from.acked();
      pos = last + 1;
    }
  }

  /** {@link #startPosition}, waiting while the peer's store refuses writes (a merge resync writes); undefined once stopped. */
  async #startPositionWhenWritable(): Promise<number | undefined> {
    for (;;) {
      try {
        return await this.#startPosition();
      } catch (err) {
        if (!isStorageRefusal(err)) throw err;
        this.holds++;
        if (!this.to.node || !(await untilWritable(this.to.node, this.#stop.signal))) return undefined;
      }
    }
  }

  async #startPosition(): Promise<number> {
    const local = this.from.node as LocalNode;
    const peer = this.to.node as LocalNode;
    const peerCursors = peer.cursors();
    this.#recover = { from: peerCursors[peer.name] ?? 0, to: local.cursors()[peer.name] ?? 0 };
    const start = local.logStart(peerCursors);
    if (start.kind === 'stream') return start.fromSeq;
    // The peer needs entries this log no longer holds: merge a snapshot instead.
    await sendSnapshot(local, SNAPSHOT_BATCH, new SnapshotMerge(peer));
    const after = local.logStart(peer.cursors());
    return after.kind === 'stream' ? after.fromSeq : local.lastSeq() + 1;
  }
}

class MemoryTransport implements ReplicationTransport {
  readonly kind = 'memory';
  node: LocalNode | undefined;
  readonly #lifecycle = new Lifecycle(this.kind);
  readonly #network: MemoryNetwork;
  readonly #batchSize: number;
  readonly #links = new Map<string, Link>();
  readonly #waiters = new ConfirmationWaiters();
  #unsubscribe: (() => void) | undefined;

  constructor(init: MemoryTransportInit) {
    this.#network = init.network;
    this.#batchSize = init.batchSize ?? 256;
  }

  get name(): string {
    return this.node?.name ?? '';
  }

  get state(): TransportState {
    return this.#lifecycle.state;
  }

  async start(node: LocalNode, opts: StartOptions = {}): Promise<void> {
    if (this.#lifecycle.state === 'new' && this.#network.members.has(node.name)) {
      throw new TransportStateError(this.kind, 'new', `node ${node.name} is already on this network`);
    }
    this.#lifecycle.begin();
    this.node = node;
    this.#network.members.set(node.name, this);
    this.#unsubscribe = node.onCommit(() => {
      for (const link of this.#links.values()) link.poke();
    });
    for (const peer of this.#network.members.values()) {
      if (peer === this) continue;
      this.connect(peer);
      peer.connect(this);
    }
    this.#lifecycle.stopOn(opts.signal, () => this.stop());
  }

  /** @internal */
  connect(peer: MemoryTransport): void {
    const old = this.#links.get(peer.name);
    if (old && !old.stopped) return;
    const link = new Link(this, peer, this.#batchSize);
    if (old) {
      link.ackedSeq = old.ackedSeq;
      link.appliedThrough = old.appliedThrough;
    }
    this.#links.set(peer.name, link);
  }

  /** @internal Stops the link to `peer`; it stays listed, disconnected, until the peer returns. */
  disconnect(peer: string): Promise<void> {
    const link = this.#links.get(peer);
    link?.stop();
    return link?.done ?? Promise.resolve();
  }

  /** @internal called by a link after a peer confirmed a batch */
  acked(): void {
    this.#waiters.notify();
  }

  async stop(): Promise<void> {
    if (!this.#lifecycle.end()) return;
    this.#unsubscribe?.();
    this.#network.members.delete(this.name);
    const done: Promise<void>[] = [];
    for (const peer of this.#links.keys()) done.push(this.disconnect(peer));
    for (const peer of this.#network.members.values()) done.push(peer.disconnect(this.name));
    this.#waiters.notify();
    await Promise.all(done);
  }

  peerNames(): readonly string[] {
    return [...this.#links.keys()];
  }

  status(): TransportStatus {
    const started = this.#lifecycle.started;
    const node = started ? this.node : undefined; // a stopped node's store may be closed
    const peers: PeerStatus[] = [...this.#links.values()].map((l) => {
      return {
        name: l.to.name,
        connected: started && !l.stopped,
        ackedSeq: l.ackedSeq,
        ...peerLag(node, l.ackedSeq),
        appliedThrough: l.appliedThrough,
        counters: { batchesSent: l.batches, entriesSent: l.entries, holds: l.holds },
        gauges: {},
      };
    });
    return { kind: this.kind, started, peers, counters: {}, gauges: {}, refused: {} };
  }

  liveConfirmations(): readonly LiveConfirmation[] {
    if (!this.#lifecycle.started) return [];
    return [...this.#links.values()].filter((l) => !l.stopped).map((l) => ({ name: l.to.name, ownApplied: l.appliedThrough[this.name] ?? 0 }));
  }

  waitForReplicas(seq: number, count: number, timeoutMs: number): Promise<number> {
    const confirmed = () => [...this.#links.values()].filter((l) => l.ackedSeq >= seq).length;
    return this.#waiters.wait(confirmed, count, timeoutMs, () => this.#lifecycle.started);
  }
}

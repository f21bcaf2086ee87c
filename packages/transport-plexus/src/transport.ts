import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import {
  Backoff,
  ConfirmationWaiters,
  Lifecycle,
  SnapshotMerge,
  TransportState,
  Wakeup,
  sendSnapshot,
  type Cursors,
  type SnapshotRecord,
  type SnapshotSink,
  MalformedFrameError,
  TransportStateError,
  decodeBatch,
  encodeBatch,
  silentLogger,
  type LocalNode,
  type LogEntry,
  type LogStart,
  type Logger,
  type PeerStatus,
  type ReplicationTransport,
  type StartOptions,
  type TransportStatus,
} from '@replica/transport-api';
import {
  Frame,
  FrameDecoder,
  PROTOCOL,
  decodeCursorsMessage,
  decodeHello,
  decodeSnapshotFrame,
  decodeSubscription,
  encodeBatchFrame,
  encodeControl,
  encodeNumberFrame,
  encodeSnapshotFrame,
  readNumber,
  splitBatchFrame,
  type Hello,
  type RawFrame,
} from './frames.js';
import { Admission } from './admission.js';
import { PLEXUS, resolveConfig, type PlexusComponents, type PlexusConfig, type PlexusInit, type PlexusPeer } from './options.js';
import { markSent, select, selectionOf, startCursors, subscriptionFor, type Selection } from './subscription.js';

/** A plexus transport; `address()` tells where it listens once started (for port 0). */
export interface PlexusTransport extends ReplicationTransport {
  address(): { host: string; port: number } | undefined;
}

/**
 * Direct replication over a full mesh of mutually authenticated TLS 1.3 connections:
 * one connection per pair of nodes, dialled by the node whose name sorts first.
 *
 * Guarantees: each origin's entries reach every peer in origin order, once (the
 * store's cursors drop duplicates); a peer that was away is caught up from the log,
 * from its own cursors, or by a merge resync when the log no longer holds what it
 * needs; while a node is cut off from an origin, its other peers relay that origin's
 * entries. Only peers with a certificate from the cluster CA whose CN names a
 * configured node are accepted.
 */
export function plexusTransport(init: PlexusInit, components: PlexusComponents = {}): PlexusTransport {
  return new Plexus(resolveConfig(init), components.logger ?? silentLogger);
}

type Counters = Record<
  | 'bytesSent'
  | 'bytesReceived'
  | 'framesSent'
  | 'framesReceived'
  | 'entriesSent'
  | 'batchesSent'
  | 'batchesReceived'
  | 'entriesApplied'
  | 'entriesSkipped'
  | 'entriesDeferred'
  | 'connects'
  | 'reconnects'
  | 'disconnects'
  | 'malformedFrames'
  | 'resyncsSent'
  | 'resyncsReceived',
  number
>;

interface InFlight {
  readonly lastSeq: number;
  readonly bytes: number;
  /** Highest originSeq per origin in the frame. */
  readonly origins: ReadonlyMap<string, number>;
}

class Link {
  socket: TLSSocket | undefined;
  /** Hello exchanged: replication runs. */
  connected = false;
  certName = '';
  peerHello: Hello | undefined;
  // sender side
  sub: Selection | undefined;
  restart = false;
  pos = 1;
  /** Entries to read per batch; shrinks when batches come out larger than batchMaxBytes. */
  readSize = 1000;
  inflight: InFlight[] = [];
  inflightBytes = 0;
  ackedSeq = 0;
  readonly appliedThrough = new Map<string, number>();
  // receiver side
  readonly queue: RawFrame[] = [];
  applying = false;
  lastReceived = 0;
  // connection management
  everConnected = false;
  reconnectTimer: NodeJS.Timeout | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;
  readonly counters: Counters = {
    bytesSent: 0,
    bytesReceived: 0,
    framesSent: 0,
    framesReceived: 0,
    entriesSent: 0,
    batchesSent: 0,
    batchesReceived: 0,
    entriesApplied: 0,
    entriesSkipped: 0,
    entriesDeferred: 0,
    connects: 0,
    reconnects: 0,
    disconnects: 0,
    malformedFrames: 0,
    resyncsSent: 0,
    resyncsReceived: 0,
  };
  /** Highest inFlightBytes since start (a gauge: a high-water mark, not a total). */
  inFlightBytesPeak = 0;
  readonly #wakeup = new Wakeup();
  readonly backoff: Backoff;
  /** The merge resync being received on the current connection. */
  merge: SnapshotMerge;

  constructor(
    readonly peer: PlexusPeer,
    readonly dialer: boolean,
    cfg: PlexusConfig,
    node: LocalNode,
  ) {
    this.backoff = new Backoff(cfg.reconnectMinMs, cfg.reconnectMaxMs);
    this.merge = new SnapshotMerge(node);
  }

  get name(): string {
    return this.peer.name;
  }

  wake(): void {
    this.#wakeup.wake();
  }

  /** Resolves at the next wake() (or at once if one came since the last wait). */
  wait(): Promise<void> {
    return this.#wakeup.wait();
  }
}

class Plexus implements PlexusTransport {
  readonly kind = PLEXUS;
  readonly #lifecycle = new Lifecycle(PLEXUS);
  #node: LocalNode | undefined;
  #server: Server | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #links = new Map<string, Link>();
  readonly #waiters = new ConfirmationWaiters();
  readonly #sockets = new Set<TLSSocket>();
  readonly #cfg: PlexusConfig;
  readonly #admission: Admission;

  constructor(
    private readonly init: PlexusConfig,
    private readonly log: Logger,
  ) {
    this.#cfg = init;
    this.#admission = new Admission(init.tls, log);
  }

  address(): { host: string; port: number } | undefined {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  async start(node: LocalNode, opts: StartOptions = {}): Promise<void> {
    if (this.#lifecycle.state === TransportState.new) this.#admission.checkOwnName(node.name);
    this.#lifecycle.begin();
    this.#node = node;
    for (const peer of this.init.peers) {
      if (peer.name === node.name || this.#links.has(peer.name)) continue;
      this.#links.set(peer.name, new Link(peer, node.name < peer.name, this.#cfg, node));
    }
    this.#unsubscribe = node.onCommit(() => {
      for (const link of this.#links.values()) link.wake();
    });
    let server: Server;
    try {
      server = createServer(this.#admission.serverOptions(), (socket) => this.#accepted(socket));
    } catch (err) {
      this.#lifecycle.end();
      this.#unsubscribe();
      throw new TransportStateError(this.kind, 'new', `TLS material is not usable: ${(err as Error).message}`);
    }
    server.on('tlsClientError', (err, socket) => this.#admission.handshakeFailed(err, socket));
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.init.listen.port, this.init.listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.#lifecycle.end();
      this.#unsubscribe();
      throw new TransportStateError(this.kind, 'new', `cannot listen on ${this.init.listen.host}:${this.init.listen.port}: ${(err as Error).message}`);
    }
    this.#heartbeat = setInterval(() => this.#tick(), this.#cfg.heartbeatMs);
    for (const link of this.#links.values()) if (link.dialer) this.#dial(link);
    this.#lifecycle.stopOn(opts.signal, () => this.stop());
    this.log.info({ listen: this.address(), peers: [...this.#links.keys()] }, 'plexus: listening for peers');
  }

  async stop(): Promise<void> {
    if (!this.#lifecycle.end()) return;
    this.#unsubscribe?.();
    clearInterval(this.#heartbeat);
    const closed = new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    const sockets = [...this.#sockets].map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : (s.once('close', () => resolve()), s.destroy()))));
    for (const link of this.#links.values()) {
      clearTimeout(link.reconnectTimer);
      clearTimeout(link.handshakeTimer);
      link.connected = false;
      link.wake();
    }
    this.#waiters.notify();
    await Promise.all([closed, ...sockets]);
  }

  status(): TransportStatus {
    const node = this.#lifecycle.started ? this.#node : undefined;
    const last = node?.lastSeq() ?? 0;
    const peers: PeerStatus[] = [...this.#links.values()].map((l) => {
      const oldest = node && l.ackedSeq < last ? node.readLog(l.ackedSeq + 1, 1)[0] : undefined;
      return {
        name: l.name,
        connected: l.connected,
        ackedSeq: l.ackedSeq,
        lagEntries: Math.max(0, last - l.ackedSeq),
        lagMs: oldest ? Math.max(0, Date.now() - oldest.version[0]) : 0,
        counters: { ...l.counters },
        gauges: { inFlightBytes: l.inflightBytes, inFlightBytesPeak: l.inFlightBytesPeak, queuedBytes: l.socket?.writableLength ?? 0 },
        info: { certificate: l.certName, address: `${l.peer.host}:${l.peer.port}`, role: l.dialer ? 'dials' : 'accepts' },
        appliedThrough: Object.fromEntries(l.appliedThrough),
      };
    });
    return { kind: this.kind, started: this.#lifecycle.started, peers, counters: {}, gauges: {}, refused: this.#admission.refused() };
  }

  get state(): TransportState {
    return this.#lifecycle.state;
  }

  peerNames(): readonly string[] {
    return [...this.#links.keys()];
  }

  waitForReplicas(seq: number, count: number, timeoutMs: number): Promise<number> {
    const confirmed = () => {
      let n = 0;
      for (const l of this.#links.values()) if (l.ackedSeq >= seq) n++;
      return n;
    };
    return this.#waiters.wait(confirmed, count, timeoutMs, () => this.#lifecycle.started);
  }

  // ------------------------------------------------------------ connections

  #dial(link: Link): void {
    if (!this.#lifecycle.started) return;
    const socket = connect(this.#admission.clientOptions(link.peer));
    this.#track(socket);
    socket.setNoDelay(true);
    link.handshakeTimer = setTimeout(() => socket.destroy(new Error('handshake timed out')), this.#cfg.deadAfterMs);
    socket.once('secureConnect', () => this.#attach(link, socket, link.peer.name));
    socket.on('error', (err: Error & { code?: string }) => {
      if (link.socket === socket) return; // reported by #attach's handler
      this.#admission.dialFailed(link.peer, err);
    });
    socket.once('close', () => {
      clearTimeout(link.handshakeTimer);
      if (link.socket === socket || link.socket === undefined) this.#scheduleReconnect(link);
    });
  }

  #scheduleReconnect(link: Link): void {
    if (!this.#lifecycle.started || !link.dialer || link.reconnectTimer) return;
    const delay = link.backoff.next();
    link.reconnectTimer = setTimeout(() => {
      link.reconnectTimer = undefined;
      if (link.everConnected) link.counters.reconnects++;
      this.#dial(link);
    }, delay);
  }

  #accepted(socket: TLSSocket): void {
    this.#track(socket);
    socket.setNoDelay(true);
    const link = this.#admission.admit(socket, this.#links);
    if (!link) return;
    link.handshakeTimer = setTimeout(() => socket.destroy(new Error('hello timed out')), this.#cfg.deadAfterMs);
    this.#attach(link, socket, link.name);
  }

  #track(socket: TLSSocket): void {
    this.#sockets.add(socket);
    socket.on('error', () => {}); // reported where it matters; never an unhandled 'error'
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #attach(link: Link, socket: TLSSocket, certName: string): void {
    if (!this.#lifecycle.started) return void socket.destroy();
    const old = link.socket;
    if (old && old !== socket) {
      this.log.info({ peer: link.name }, 'plexus: replacing an older connection');
      this.#detach(link, old, 'replaced');
      old.destroy();
    }
    link.socket = socket;
    link.certName = certName;
    link.lastReceived = Date.now();
    const decoder = new FrameDecoder(this.#cfg.maxFrameBytes);
    socket.on('data', (chunk: Buffer) => {
      if (link.socket !== socket) return;
      link.counters.bytesReceived += chunk.length;
      link.lastReceived = Date.now();
      let frames: RawFrame[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        return this.#protocolError(link, socket, err);
      }
      for (const f of frames) {
        link.counters.framesReceived++;
        try {
          this.#onFrame(link, socket, f);
        } catch (err) {
          return this.#protocolError(link, socket, err);
        }
      }
    });
    socket.on('error', (err) => {
      if (link.socket === socket) this.log.warn({ peer: link.name, err: err.message }, 'plexus: connection error');
    });
    socket.on('close', () => this.#detach(link, socket, 'closed'));
    socket.on('drain', () => link.wake());
    this.#send(link, socket, encodeControl(Frame.hello, { protocol: PROTOCOL, node: this.#node?.name, cursors: this.#node?.cursors() }));
  }

  #detach(link: Link, socket: TLSSocket, why: string): void {
    if (link.socket !== socket) return;
    const wasConnected = link.connected;
    link.socket = undefined;
    link.connected = false;
    link.sub = undefined;
    link.inflight = [];
    link.inflightBytes = 0;
    link.queue.length = 0;
    link.merge = new SnapshotMerge(this.#node as LocalNode);
    clearTimeout(link.handshakeTimer);
    link.wake();
    if (wasConnected) {
      link.counters.disconnects++;
      this.log.info({ peer: link.name, why }, 'plexus: peer disconnected');
      this.#resubscribeAll();
    }
    this.#waiters.notify();
    if (link.dialer) this.#scheduleReconnect(link);
  }

  #protocolError(link: Link, socket: TLSSocket, err: unknown): void {
    link.counters.malformedFrames++;
    this.log.warn({ peer: link.name, err: (err as Error).message, code: (err as { code?: string }).code }, 'plexus: protocol error, closing the connection');
    socket.destroy();
  }

  #send(link: Link, socket: TLSSocket, frame: Buffer): boolean {
    link.counters.bytesSent += frame.length;
    link.counters.framesSent++;
    return socket.write(frame);
  }

  #tick(): void {
    const now = Date.now();
    for (const link of this.#links.values()) {
      const s = link.socket;
      if (!s) continue;
      // While this side holds back reading (applies lag behind), the peer is not silent.
      if (s.isPaused() || link.applying) link.lastReceived = now;
      if (now - link.lastReceived > this.#cfg.deadAfterMs) {
        this.log.warn({ peer: link.name, silentMs: now - link.lastReceived }, 'plexus: peer silent, disconnecting');
        s.destroy();
        continue;
      }
      if (link.connected) this.#send(link, s, encodeNumberFrame(Frame.ping, now));
    }
  }

  // ------------------------------------------------------------ frames

  #onFrame(link: Link, socket: TLSSocket, f: RawFrame): void {
    const node = this.#node as LocalNode;
    switch (f.type) {
      case Frame.hello: {
        const hello = decodeHello(f.payload);
        if (hello.node !== link.name) throw new MalformedFrameError(`hello from ${hello.node} on the connection of ${link.name}`);
        if (link.connected) throw new MalformedFrameError('second hello');
        clearTimeout(link.handshakeTimer);
        // A peer that comes back with less of our writes than it once confirmed lost
        // data: its old confirmations no longer count.
        const mine = this.#node?.name ?? '';
        if ((hello.cursors[mine] ?? 0) < (link.appliedThrough.get(mine) ?? 0)) {
          this.log.warn({ peer: link.name, confirmed: link.appliedThrough.get(mine), now: hello.cursors[mine] ?? 0 }, 'plexus: peer lost writes it had confirmed');
          link.ackedSeq = 0;
          link.appliedThrough.clear();
        }
        link.peerHello = hello;
        link.connected = true;
        link.backoff.reset();
        link.everConnected = true;
        link.counters.connects++;
        this.log.info({ peer: link.name, certificate: link.certName }, 'plexus: peer connected');
        this.#subscribe(link, socket);
        this.#resubscribeAll(link);
        void this.#pump(link, socket);
        return;
      }
      case Frame.subscribe: {
        if (!link.connected) throw new MalformedFrameError('subscribe before hello');
        link.sub = selectionOf(decodeSubscription(f.payload));
        link.restart = true;
        link.wake();
        return;
      }
      case Frame.ack:
        return this.#onAck(link, readNumber(f.payload));
      case Frame.ping:
        this.#send(link, socket, encodeNumberFrame(Frame.pong, readNumber(f.payload)));
        return;
      case Frame.pong:
        readNumber(f.payload);
        return;
      case Frame.batch:
      case Frame.resyncBegin:
      case Frame.snapshot:
      case Frame.resyncEnd:
        if (!link.connected) throw new MalformedFrameError('data before hello');
        link.queue.push(f);
        // Receiver backpressure: stop reading while applies lag behind.
        if (link.queue.length > 8) socket.pause();
        if (!link.applying) void this.#applyLoop(link, socket, node);
        return;
      default:
        throw new MalformedFrameError(`unexpected frame type ${f.type}`);
    }
  }

  /** Tells the peer what this node wants from it (see {@link Subscription}). */
  #subscribe(link: Link, socket: TLSSocket): void {
    const node = this.#node as LocalNode;
    const others: string[] = [];
    for (const other of this.#links.values()) if (other !== link && other.connected) others.push(other.name);
    const sub = subscriptionFor(node.name, node.cursors(), others, link.peerHello?.cursors[node.name] ?? 0);
    if (sub.recoverUntil > 0) {
      const own = sub.cursors[node.name] ?? 0;
      this.log.warn({ peer: link.name, own, theirs: sub.recoverUntil }, 'plexus: the peer holds writes of this node that this node lacks; recovering them');
    }
    this.#send(link, socket, encodeControl(Frame.subscribe, sub));
  }

  /** Connectivity changed: every other link's subscription (who relays what) changes too. */
  #resubscribeAll(except?: Link): void {
    if (!this.#lifecycle.started) return;
    for (const l of this.#links.values()) if (l !== except && l.connected && l.socket) this.#subscribe(l, l.socket);
  }

  #onAck(link: Link, seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new MalformedFrameError('ack is not a sequence number');
    while (link.inflight.length > 0 && (link.inflight[0] as InFlight).lastSeq <= seq) {
      const done = link.inflight.shift() as InFlight;
      link.inflightBytes -= done.bytes;
      for (const [origin, n] of done.origins) {
        if (n > (link.appliedThrough.get(origin) ?? 0)) link.appliedThrough.set(origin, n);
      }
    }
    // Ranges that carried nothing for this peer count as confirmed once all before them are.
    while (link.inflight.length > 0 && (link.inflight[0] as InFlight).bytes === 0) {
      seq = Math.max(seq, (link.inflight.shift() as InFlight).lastSeq);
    }
    if (seq > link.ackedSeq) link.ackedSeq = seq;
    link.wake();
    this.#waiters.notify();
  }

  // ------------------------------------------------------------ receiving

  async #applyLoop(link: Link, socket: TLSSocket, node: LocalNode): Promise<void> {
    link.applying = true;
    try {
      while (link.socket === socket && link.queue.length > 0) {
        const f = link.queue.shift() as RawFrame;
        if (link.queue.length <= 2 && socket.isPaused()) socket.resume();
        await this.#applyFrame(link, socket, node, f);
      }
    } catch (err) {
      if (err instanceof MalformedFrameError) this.#protocolError(link, socket, err);
      else if (link.socket === socket && this.#lifecycle.started) {
        this.log.error({ peer: link.name, err: (err as Error).message }, 'plexus: applying a batch failed; closing the connection');
        socket.destroy();
      }
    } finally {
      link.applying = false;
      if (socket.isPaused() && link.socket === socket) socket.resume();
      // A newer connection queued frames while this (older) loop was still applying.
      const current = link.socket;
      if (current && current !== socket && link.queue.length > 0) void this.#applyLoop(link, current, node);
    }
  }

  async #applyFrame(link: Link, socket: TLSSocket, node: LocalNode, f: RawFrame): Promise<void> {
    switch (f.type) {
      case Frame.batch: {
        const { lastSeq, batch } = splitBatchFrame(f.payload);
        const entries = decodeBatch(batch);
        link.counters.batchesReceived++;
        const r = await node.applyRemote(entries);
        link.counters.entriesApplied += r.applied;
        link.counters.entriesSkipped += r.skipped;
        if (link.socket !== socket) return;
        if (r.deferred > 0) {
          // A gap: ask for a fresh stream from our cursors instead of confirming.
          link.counters.entriesDeferred += r.deferred;
          link.queue.length = 0;
          this.#subscribe(link, socket);
          return;
        }
        this.#send(link, socket, encodeNumberFrame(Frame.ack, lastSeq));
        return;
      }
      case Frame.resyncBegin: {
        const cursors = decodeCursorsMessage(f.payload);
        link.counters.resyncsReceived++;
        this.log.warn({ peer: link.name, theirCursors: cursors, ourCursors: node.cursors() }, 'plexus: MERGE RESYNC from peer: our cursors fell behind its retained log');
        link.merge.begin(cursors);
        return;
      }
      case Frame.snapshot:
        await link.merge.records(decodeSnapshotFrame(f.payload));
        return;
      case Frame.resyncEnd: {
        decodeCursorsMessage(f.payload);
        await link.merge.end();
        this.log.warn({ peer: link.name, cursors: node.cursors() }, 'plexus: merge resync complete');
        if (link.socket === socket) this.#subscribe(link, socket);
        return;
      }
      default:
        throw new MalformedFrameError(`unexpected frame type ${f.type}`);
    }
  }

  // ------------------------------------------------------------ sending

  /** Streams this node's log to the peer on `socket`, as its subscription asks. */
  async #pump(link: Link, socket: TLSSocket): Promise<void> {
    const node = this.#node as LocalNode;
    while (link.socket === socket && this.#lifecycle.started) {
      const sub = link.sub;
      if (!sub) {
        await link.wait();
        continue;
      }
      if (link.restart) {
        link.restart = false;
        link.readSize = this.#cfg.batchMaxEntries;
        link.inflight = [];
        link.inflightBytes = 0;
        const start = node.logStart(startCursors(link.name, sub, node.cursors()));
        if (start.kind === 'resync') {
          await this.#resync(link, socket, node, start);
          continue;
        }
        link.pos = start.fromSeq;
      }
      if (link.inflight.length >= this.#cfg.maxInFlightFrames || link.inflightBytes >= this.#cfg.maxInFlightBytes || socket.writableNeedDrain) {
        await link.wait();
        continue;
      }
      const entries = node.readLog(link.pos, link.readSize);
      if (entries.length === 0) {
        await link.wait();
        continue;
      }
      const out = select(link.name, sub, entries);
      const batch = out.length > 0 ? encodeBatch(out) : undefined;
      if (batch && batch.length > this.#cfg.batchMaxBytes && entries.length > 1) {
        // Too big for one frame: read fewer entries (the window check then applies per frame).
        link.readSize = Math.max(1, entries.length >> 1);
        continue;
      }
      const lastSeq = (entries.at(-1) as LogEntry).seq;
      link.pos = lastSeq + 1;
      markSent(sub, out);
      if (!batch) {
        if (link.inflight.length === 0) this.#onAck(link, lastSeq);
        else link.inflight.push({ lastSeq, bytes: 0, origins: new Map() });
        continue;
      }
      if (batch.length < this.#cfg.batchMaxBytes / 4) link.readSize = Math.min(this.#cfg.batchMaxEntries, link.readSize * 2);
      this.#sendBatch(link, socket, out, lastSeq, batch);
    }
  }

  #sendBatch(link: Link, socket: TLSSocket, entries: readonly LogEntry[], lastSeq: number, batch: Uint8Array): void {
    const origins = new Map<string, number>();
    for (const e of entries) origins.set(e.origin, e.originSeq);
    const frame = encodeBatchFrame(lastSeq, batch);
    link.inflight.push({ lastSeq, bytes: frame.length, origins });
    link.inflightBytes += frame.length;
    if (link.inflightBytes > link.inFlightBytesPeak) link.inFlightBytesPeak = link.inflightBytes;
    link.counters.entriesSent += entries.length;
    link.counters.batchesSent++;
    this.#send(link, socket, frame);
  }

  /** The peer needs entries this log no longer holds: send it a snapshot to merge. */
  async #resync(link: Link, socket: TLSSocket, node: LocalNode, start: Extract<LogStart, { kind: 'resync' }>): Promise<void> {
    link.counters.resyncsSent++;
    link.sub = undefined; // the peer subscribes again once it merged
    this.log.warn(
      { peer: link.name, origin: start.origin, needed: start.needed, oldestRetained: start.oldest },
      'plexus: MERGE RESYNC of peer: it needs entries this node pruned; sending a snapshot',
    );
    const open = () => link.socket === socket && this.#lifecycle.started;
    const sent = await sendSnapshot(node, this.#cfg.snapshotBatch, new SnapshotFrames(socket, (frame) => this.#send(link, socket, frame)), open);
    if (sent.complete) this.log.warn({ peer: link.name, records: sent.records }, 'plexus: merge resync snapshot sent');
  }
}

/** A merge-resync snapshot as frames on a connection: resyncBegin, snapshot…, resyncEnd; paced by the socket's buffer. */
class SnapshotFrames implements SnapshotSink {
  constructor(
    private readonly socket: TLSSocket,
    private readonly send: (frame: Buffer) => boolean,
  ) {}

  begin(cursors: Cursors): void {
    this.send(encodeControl(Frame.resyncBegin, { cursors }));
  }

  records(batch: readonly SnapshotRecord[]): void | Promise<void> {
    if (!this.send(encodeSnapshotFrame(batch))) return writable(this.socket);
  }

  end(cursors: Cursors): void {
    this.send(encodeControl(Frame.resyncEnd, { cursors }));
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

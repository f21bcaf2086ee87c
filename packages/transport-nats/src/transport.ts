import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  connect,
  createInbox,
  nanos,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type Msg,
  type NatsConnection,
} from 'nats';
import { AsyncPublisher } from './async-publisher.js';
import { checkTls, clientTlsOptions, explainConnectError, type NatsTlsFiles } from './tls.js';
import {
  ConfirmationWaiters,
  MalformedFrameError,
  TransportStateError,
  decodeBatch,
  decodeCursors,
  decodeSnapshot,
  encodeBatch,
  encodeCursors,
  encodeSnapshot,
  type Cursors,
  silentLogger,
  type LocalNode,
  type LogEntry,
  type Logger,
  type PeerStatus,
  type ReplicationTransport,
  type StartOptions,
  type TransportStatus,
} from '@replica/transport-api';

/** The retention hold of the outbox: own entries the stream does not hold yet stay in the log. */
const OUTBOX_HOLD = 'nats-outbox';
/** How long the client may fail to reconnect before the servers are probed for the reason. */
const RECONNECT_CHECK_MS = 5000;

/** A merge resync gives up on a snapshot source that sent nothing for this long. */
const SNAPSHOT_IDLE_MS = 10_000;

/**
 * How committed writes go to the broker:
 * - `per-write`: one message per write; the write's HTTP answer waits for the broker's
 *   acknowledgement (PubAck), as Harper 4.3 did.
 * - `batched`: many entries per message, published asynchronously with a bounded
 *   number in flight; the HTTP answer does not wait for the broker.
 */
export type PublishMode = 'per-write' | 'batched';

export interface NatsInit {
  /** NATS server URL(s), e.g. nats://user:pass@127.0.0.1:4222. */
  readonly servers: string | readonly string[];
  readonly mode: PublishMode;
  /** Stream name prefix; each origin owns `<prefix>_<node>`. Default REPLICA. */
  readonly streamPrefix?: string;
  /** Subject prefix; an origin publishes on `<prefix>.<node>.<table>`. Default replica. */
  readonly subjectPrefix?: string;
  /** Place this node's stream on the server with this tag (the node's own server), in this NATS cluster. */
  readonly placement?: { readonly cluster: string; readonly tag: string };
  /** Stream limits: oldest messages are discarded past them. Defaults 7 days, unlimited bytes. */
  readonly streamMaxAgeMs?: number;
  readonly streamMaxBytes?: number;
  /** Stream replicas in the NATS cluster. Default 1 (stored on its own server). */
  readonly streamReplicas?: number;
  /** batched mode: entries and bytes per message. Defaults 500 and 1 MiB. */
  readonly batchMaxEntries?: number;
  readonly batchMaxBytes?: number;
  /** Publishes awaiting their PubAck at once. Default 256. */
  readonly maxInFlight?: number;
  /** Messages a consumer keeps requested, and the longest a pull request waits. Defaults 256 and 1000 ms. */
  readonly fetchBatch?: number;
  readonly fetchExpiresMs?: number;
  /** How long a delivered message may stay unacknowledged before the broker redelivers it (e.g. after a crash). Default 5000 ms. */
  readonly ackWaitMs?: number;
  /** per-write: how long a write waits for its PubAck. Default 5000 ms. */
  readonly publishTimeoutMs?: number;
  /** How long start() keeps retrying JetStream calls (a forming cluster has no meta leader yet). Default 30 s. */
  readonly startTimeoutMs?: number;
  /** How often other nodes' streams are looked for, and consumer state refreshed. Default 1000 ms. */
  readonly discoverIntervalMs?: number;
  /**
   * TLS for the connection to NATS (PEM file paths). When set, the node connects only
   * with TLS: `ca` is the CA that signed the servers' certificates (default: Node's trust
   * store); `cert` and `key`, both or neither, are its client certificate for servers
   * that verify clients. The files are read at every (re)connect.
   */
  readonly tls?: NatsTlsFiles;
}

export interface NatsComponents {
  readonly logger?: Logger;
}

/** A NATS transport; `shipped(seq)` is what per-write mode makes writes wait for. */
export interface NatsTransport extends ReplicationTransport {
  readonly mode: PublishMode;
}

/**
 * Replication through a NATS/JetStream cluster: each node appends its committed log
 * entries to a stream it owns (from its log, so a broker outage delays replication
 * but loses no write; message ids make a retried publish stored once), and reads
 * every other node's stream with a durable pull consumer, applying each fetched batch
 * in one store transaction before acknowledging it.
 */
export function natsTransport(init: NatsInit, components: NatsComponents = {}): NatsTransport {
  return new Nats(init, components.logger ?? silentLogger);
}

type State = 'new' | 'started' | 'stopped';

/**
 * The NATS client ignores credentials in server URLs: take `user:pass@` out of them
 * (the first URL that has them wins) and hand them over as options. The URLs that
 * remain are safe to log.
 */
export function splitCredentials(urls: readonly string[]): { servers: string[]; user?: string; pass?: string } {
  let user: string | undefined;
  let pass: string | undefined;
  const servers = urls.map((u) => {
    const m = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(u);
    if (!m) return u;
    const [name, password] = (m[2] as string).split(':');
    if (user === undefined) {
      user = decodeURIComponent(name ?? '');
      pass = password === undefined ? undefined : decodeURIComponent(password);
    }
    return `${m[1]}${m[3]}`;
  });
  return { servers, ...(user !== undefined ? { user } : {}), ...(pass !== undefined ? { pass } : {}) };
}

interface Origin {
  readonly name: string;
  readonly stream: string;
  consumer: Consumer | undefined;
  messages: ConsumerMessages | undefined;
  running: boolean;
  pending: number;
  ackPending: number;
  redelivered: number;
  fetched: number;
  applied: number;
  deferred: number;
  lastAppliedVersionMs: number;
  resyncs: number;
  /** Times the durable consumer was re-created at this node's cursor (start, gaps). */
  repositions: number;
  /** Set when a gap was seen: the consumer is re-created at the cursor instead of nak-ing. */
  reposition: boolean;
  lastRepositionMs: number;
}

interface Waiter {
  readonly seq: number;
  resolve(): void;
  reject(err: Error): void;
}

class Nats implements NatsTransport {
  readonly kind = 'nats';
  readonly mode: PublishMode;
  #state: State = 'new';
  #node: LocalNode | undefined;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #stream = '';
  #unsubscribe: (() => void) | undefined;
  #wake: (() => void) | undefined;
  #woken = false;
  #timers: NodeJS.Timeout[] = [];
  #halt: () => void = () => {};
  readonly #stopped = new Promise<'stopped'>((resolve) => (this.#halt = () => resolve('stopped')));
  #loops: Promise<void>[] = [];
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  readonly #origins = new Map<string, Origin>();
  /** Per peer, the cursors it last announced: how far it applied each origin. */
  readonly #peerCursors = new Map<string, Cursors>();
  /** Local seq → writers waiting for its PubAck (per-write). */
  readonly #shipWaiters = new Map<number, Waiter[]>();
  readonly #confirmWaiters = new ConfirmationWaiters();
  /** Highest local seq whose PubAck arrived. */
  #shippedSeq = 0;
  #publishedOriginSeq = 0;
  /** Message id of the last message the stream stored, for the next publish's expectation. */
  #lastStoredId: string | undefined;
  #appliedDirty = false;
  /** Connected to a NATS server right now (false while the client reconnects). */
  #brokerUp = true;
  readonly #counters = { published: 0, publishErrors: 0, messagesPublished: 0, reconnects: 0, disconnects: 0, serverErrors: 0, tlsRefusals: 0, ownEntriesSkipped: 0 };
  #disconnectedAt = 0;
  #reconnectCheck: NodeJS.Timeout | undefined;
  /** The servers and credentials start() was given (for the reconnect check). */
  #endpoints: { servers: string[]; user: string | undefined; pass: string | undefined } = { servers: [], user: undefined, pass: undefined };
  readonly #cfg: Required<Omit<NatsInit, 'servers' | 'mode' | 'placement' | 'tls'>>;

  constructor(
    private readonly init: NatsInit,
    private readonly log: Logger,
  ) {
    this.mode = init.mode;
    this.#cfg = {
      streamPrefix: init.streamPrefix ?? 'REPLICA',
      subjectPrefix: init.subjectPrefix ?? 'replica',
      streamMaxAgeMs: init.streamMaxAgeMs ?? 7 * 24 * 3600_000,
      streamMaxBytes: init.streamMaxBytes ?? -1,
      streamReplicas: init.streamReplicas ?? 1,
      batchMaxEntries: init.batchMaxEntries ?? 500,
      batchMaxBytes: init.batchMaxBytes ?? 1024 * 1024,
      maxInFlight: init.maxInFlight ?? 256,
      fetchBatch: init.fetchBatch ?? 256,
      fetchExpiresMs: Math.max(1000, init.fetchExpiresMs ?? 1000), // the client refuses less
      publishTimeoutMs: init.publishTimeoutMs ?? 5000,
      startTimeoutMs: init.startTimeoutMs ?? 30_000,
      ackWaitMs: init.ackWaitMs ?? 5000,
      discoverIntervalMs: init.discoverIntervalMs ?? 1000,
    };
  }

  async start(node: LocalNode, opts: StartOptions = {}): Promise<void> {
    if (this.#state !== 'new') throw new TransportStateError(this.kind, this.#state, `cannot start a transport that is ${this.#state}`);
    this.#state = 'started';
    this.#node = node;
    // Until shipping knows what the stream holds, retention keeps the whole log.
    node.retainLog?.(OUTBOX_HOLD, 1);
    const { servers, user, pass } = splitCredentials(typeof this.init.servers === 'string' ? [this.init.servers] : [...this.init.servers]);
    this.#endpoints = { servers, user, pass };
    try {
      const tls = this.init.tls ? clientTlsOptions(this.init.tls) : undefined;
      // A server that refuses this node's client certificate would make connect() retry forever.
      await checkTls(servers, this.init.tls, { user, pass });
      this.#nc = await connect({
        servers,
        ...(user !== undefined ? { user, pass: pass ?? '' } : {}),
        ...(tls ? { tls } : {}),
        name: `replica-${node.name}`,
        // The first URL is this node's own server (where its stream lives); the others
        // are fallbacks, tried in the order given.
        noRandomize: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 5000,
        timeout: 5000,
      });
    } catch (err) {
      this.#state = 'stopped';
      const reason = explainConnectError(err, this.init.tls);
      throw new TransportStateError(this.kind, 'new', `cannot connect to NATS at ${servers.join(', ')}: ${reason}`, { cause: err });
    }
    try {
      await this.#startOn(this.#nc, node, opts);
    } catch (err) {
      await this.stop(); // nothing keeps running (or reconnecting) after a failed start
      throw err;
    }
  }

  async #startOn(nc: NatsConnection, node: LocalNode, opts: StartOptions): Promise<void> {
    this.#loops.push(this.#watchStatus(nc));
    // A cluster that is still forming (no JetStream meta leader yet, as when every
    // server starts at once) answers with timeouts or 503s for a while: retry, bounded.
    this.#jsm = await this.#whileStarting('reaching JetStream', () => nc.jetstreamManager());
    this.#js = nc.jetstream({ timeout: this.#cfg.publishTimeoutMs });
    this.#stream = this.#streamOf(node.name);
    await this.#whileStarting('creating the stream', () => this.#ensureStream(node.name));
    this.#publishedOriginSeq = await this.#whileStarting('reading the stream', () => this.#lastPublished());
    await this.#restoreFromPeers(node);
    await this.#recoverOwn(node);
    this.#unsubscribe = node.onCommit(() => this.#poke());
    // Peers announce what they applied, so this node can confirm replicas.
    const sub = nc.subscribe(`${this.#cfg.subjectPrefix}._applied.*`, {
      callback: (_err, msg) => {
        const from = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        if (from === node.name) return;
        let cursors: Cursors;
        try {
          cursors = decodeCursors(msg.data);
        } catch (err) {
          this.log.warn({ from, err: (err as Error).message }, 'nats: ignoring a malformed applied-cursors announcement');
          return;
        }
        this.#peerCursors.set(from, cursors);
        this.#confirmWaiters.notify();
        if (!this.#origins.has(from)) void this.#discover().catch((err: Error) => this.log.warn({ err: err.message }, 'nats: discovery failed'));
      },
    });
    this.#loops.push(sub.closed.then(() => {}));
    // Any node can serve a merge resync of what it holds.
    const snapSub = nc.subscribe(`${this.#cfg.subjectPrefix}._snapshot.${node.name}`, {
      callback: (_err, msg) => void this.#serveSnapshot(msg).catch((err: Error) => this.log.warn({ err: err.message }, 'nats: serving a snapshot failed')),
    });
    this.#loops.push(snapSub.closed.then(() => {}));
    this.#loops.push(this.#publishLoop());
    this.#appliedDirty = true; // peers learn this node's cursors at once, not at its next apply
    await this.#whileStarting('listing streams', () => this.#discover());
    this.#timers.push(setInterval(() => void this.#discover().catch((err: Error) => this.log.warn({ err: err.message }, 'nats: discovery failed')), this.#cfg.discoverIntervalMs));
    this.#timers.push(setInterval(() => this.#announceApplied(), 100));
    if (opts.signal) {
      this.#signal = opts.signal;
      this.#onAbort = () => void this.stop();
      opts.signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    this.log.info({ server: nc.getServer(), stream: this.#stream, mode: this.mode }, 'nats: replicating through JetStream');
  }

  async stop(): Promise<void> {
    this.#node?.retainLog?.(OUTBOX_HOLD, undefined);
    if (this.#state !== 'started') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopped';
    this.#signal?.removeEventListener('abort', this.#onAbort as () => void);
    this.#unsubscribe?.();
    for (const t of this.#timers) clearInterval(t);
    clearTimeout(this.#reconnectCheck);
    for (const o of this.#origins.values()) {
      o.running = false;
      o.messages?.stop();
    }
    this.#poke();
    const err = new TransportStateError(this.kind, 'stopped', 'transport stopped before the broker acknowledged the write');
    for (const ws of this.#shipWaiters.values()) for (const w of ws) w.reject(err);
    this.#shipWaiters.clear();
    this.#confirmWaiters.notify();
    this.#halt();
    await this.#nc?.close().catch(() => {});
    // The client's status and fetch iterators do not always end on close; the loops
    // race them against #stopped, so every loop is finished here.
    await Promise.allSettled(this.#loops);
  }

  status(): TransportStatus {
    const node = this.#state === 'started' ? this.#node : undefined;
    const connected = this.#state === 'started' && this.#brokerUp && this.#nc !== undefined && !this.#nc.isClosed();
    const last = node?.lastSeq() ?? 0;
    const peers: PeerStatus[] = [...this.#origins.values()].map((o) => {
      const ackedSeq = node ? this.#ackedSeqOf(node, o.name) : 0;
      const oldest = node && ackedSeq < last ? node.readLog(ackedSeq + 1, 1)[0] : undefined;
      return {
        name: o.name,
        connected: connected && o.running,
        ackedSeq,
        lagEntries: Math.max(0, last - ackedSeq),
        lagMs: oldest ? Math.max(0, Date.now() - oldest.version[0]) : 0,
        appliedThrough: this.#peerCursors.get(o.name) ?? {},
        counters: {
          redeliveries: o.redelivered,
          messagesFetched: o.fetched,
          entriesApplied: o.applied,
          entriesDeferred: o.deferred,
          resyncs: o.resyncs,
          repositions: o.repositions,
        },
        gauges: { consumerPending: o.pending, consumerAckPending: o.ackPending },
        info: { stream: o.stream, consumer: node?.name ?? '' },
      };
    });
    return { kind: this.kind, started: this.#state === 'started', peers, counters: { ...this.#counters }, gauges: { shippedSeq: this.#shippedSeq }, refused: {} };
  }

  get state(): State {
    return this.#state;
  }

  peerNames(): readonly string[] {
    return [...this.#origins.keys()];
  }

  /**
   * A peer takes only this node's own writes from this node's stream: it confirmed
   * this log up to just before the first own entry it has not applied (all of it when
   * it applied every own write).
   */
  #ackedSeqOf(node: LocalNode, peer: string): number {
    const confirmed = this.#peerCursors.get(peer)?.[node.name] ?? 0;
    if (confirmed >= (node.cursors()[node.name] ?? 0)) return node.lastSeq();
    const next = node.seqOf(node.name, confirmed + 1);
    return next === undefined ? 0 : next - 1;
  }

  /** per-write: resolves when the broker stored local entry `seq`; batched: at once. */
  shipped(seq: number): Promise<void> {
    if (this.mode === 'batched' || seq <= this.#shippedSeq) return Promise.resolve();
    if (this.#state !== 'started') return Promise.reject(new TransportStateError(this.kind, this.#state, 'transport not started'));
    return new Promise((resolve, reject) => {
      const list = this.#shipWaiters.get(seq) ?? [];
      list.push({ seq, resolve, reject });
      this.#shipWaiters.set(seq, list);
    });
  }

  waitForReplicas(seq: number, count: number, timeoutMs: number): Promise<number> {
    const node = this.#node;
    const originSeq = node?.readLog(seq, 1)[0]?.originSeq ?? Number.POSITIVE_INFINITY;
    const confirmed = () => {
      let n = 0;
      for (const cursors of this.#peerCursors.values()) if ((cursors[node?.name ?? ''] ?? 0) >= originSeq) n++;
      return n;
    };
    return this.#confirmWaiters.wait(confirmed, count, timeoutMs, () => this.#state === 'started');
  }

  // ------------------------------------------------------------ broker set-up

  #streamOf(node: string): string {
    return `${this.#cfg.streamPrefix}_${node}`;
  }

  async #ensureStream(node: string): Promise<void> {
    const jsm = this.#jsm as JetStreamManager;
    const config = {
      name: this.#stream,
      subjects: [`${this.#cfg.subjectPrefix}.${node}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(this.#cfg.streamMaxAgeMs),
      max_bytes: this.#cfg.streamMaxBytes,
      num_replicas: this.#cfg.streamReplicas,
      duplicate_window: nanos(Math.min(120_000, this.#cfg.streamMaxAgeMs)),
      ...(this.init.placement ? { placement: { cluster: this.init.placement.cluster, tags: [this.init.placement.tag] } } : {}),
    };
    try {
      await jsm.streams.info(this.#stream);
      await jsm.streams.update(this.#stream, { max_age: config.max_age, max_bytes: config.max_bytes });
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err;
      await jsm.streams.add(config);
    }
  }

  /** Runs a start-up step again (with backoff) until it succeeds or startTimeoutMs passed. */
  async #whileStarting<T>(what: string, step: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#cfg.startTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        if (this.#state !== 'started' || Date.now() >= deadline) throw err;
        this.log.warn({ err: (err as Error).message, attempt }, `nats: ${what} failed; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(2000, 250 * attempt)));
      }
    }
  }

  /** The highest own originSeq the stream holds (0 for an empty stream). */
  async #lastPublished(): Promise<number> {
    const jsm = this.#jsm as JetStreamManager;
    const info = await jsm.streams.info(this.#stream);
    if (info.state.messages === 0) {
      this.#lastStoredId = undefined;
      return 0;
    }
    const last = await jsm.streams.getMessage(this.#stream, { seq: info.state.last_seq });
    const entries = decodeBatch(last.data);
    this.#lastStoredId = last.header?.get('Nats-Msg-Id') || undefined;
    return (entries.at(-1) as LogEntry).originSeq;
  }

  /**
   * A node that lost its data must not write again under origin sequences it used
   * before: peers skip entries at or below their cursor for it, so those writes would
   * never reach them. When its stream shows that it wrote before but cannot give all of
   * it back (its limits expired every message, or the oldest ones), a snapshot from a
   * peer first returns its records and its write count; the stream supplies the rest.
   * With no peer able to, start() fails rather than diverge; a node with no peers
   * (no other stream) starts as it is.
   */
  async #restoreFromPeers(node: LocalNode): Promise<void> {
    const jsm = this.#jsm as JetStreamManager;
    const own = () => node.cursors()[node.name] ?? 0;
    const info = await this.#whileStarting('reading the stream', () => jsm.streams.info(this.#stream));
    let needed: number; // the own cursor that the stream can continue from
    if (info.state.messages === 0) {
      if (info.state.last_seq === 0 || own() > 0) return; // a new stream, or a node that kept its data
      needed = 1;
    } else {
      if (this.#publishedOriginSeq <= own()) return;
      const first = await this.#firstEntryAfter(this.#stream, 0);
      if (!first || first.originSeq <= own() + 1) return; // #recoverOwn applies the rest
      needed = first.originSeq - 1;
    }
    const peers = (await this.#peerStreams()).map((p) => p.origin);
    this.log.error(
      { own: own(), streamMessages: info.state.messages, streamLastSeq: info.state.last_seq, peers },
      'nats: this node lost writes that its stream no longer holds; restoring them from a peer before it writes again',
    );
    if (peers.length === 0) {
      this.log.warn({}, 'nats: no peer to restore from; starting with what this node holds');
      return;
    }
    const deadline = Date.now() + this.#cfg.startTimeoutMs;
    for (;;) {
      for (const peer of peers) {
        try {
          await this.#requestSnapshot(peer, node);
        } catch (err) {
          this.log.warn({ peer, err: (err as Error).message }, 'nats: restoring from this peer failed; trying the next');
          continue;
        }
        if (own() >= needed) {
          this.log.warn({ peer, own: own() }, 'nats: restored this node\'s writes from a peer');
          return;
        }
      }
      if (Date.now() >= deadline || this.#state !== 'started') break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new TransportStateError(
      this.kind,
      'new',
      `this node lost writes that its stream no longer holds, and no peer (${peers.join(', ')}) could send them back within ${this.#cfg.startTimeoutMs} ms; start it again once a peer runs`,
    );
  }

  /**
   * A node that lost its data finds its own earlier writes in its stream: it applies
   * them back before shipping anything, so new writes continue after them.
   */
  async #recoverOwn(node: LocalNode): Promise<void> {
    const own = node.cursors()[node.name] ?? 0;
    if (this.#publishedOriginSeq <= own) return;
    this.log.warn({ own, inStream: this.#publishedOriginSeq }, 'nats: the stream holds writes of this node that its store lacks; recovering them');
    const jsm = this.#jsm as JetStreamManager;
    const info = await jsm.streams.info(this.#stream);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      let data: Uint8Array;
      try {
        data = (await jsm.streams.getMessage(this.#stream, { seq })).data;
      } catch {
        continue; // deleted message
      }
      const r = await node.applyRemote(decodeBatch(data));
      if (r.deferred > 0) {
        this.log.error({ seq }, 'nats: own stream has a gap; recovery incomplete');
        break;
      }
    }
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    const it = nc.status()[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([it.next(), this.#stopped]);
      if (next === 'stopped' || next.done) return;
      const s = next.value;
      if (s.type === 'disconnect') {
        // A reconnect attempt that failed after its TLS handshake reports another
        // disconnect, and each such report a reconnect when one succeeds: one outage,
        // counted and checked once.
        if (!this.#brokerUp) continue;
        this.#brokerUp = false;
        this.#disconnectedAt = Date.now();
        this.#counters.disconnects++;
        this.log.warn({ server: s.data }, 'nats: disconnected from the server');
        this.#checkReconnectLater(RECONNECT_CHECK_MS);
      } else if (s.type === 'reconnect') {
        if (this.#brokerUp) continue;
        this.#brokerUp = true;
        this.#counters.reconnects++;
        clearTimeout(this.#reconnectCheck);
        this.log.info({ server: s.data }, 'nats: reconnected');
        this.#poke();
      } else if (s.type === 'error') {
        // -ERR from the server: an authorization or permissions violation, say
        this.#counters.serverErrors++;
        this.log.error({ error: s.data }, 'nats: the server reported an error');
      } else if (s.type === 'ldm') {
        this.log.warn({ server: s.data }, 'nats: the server is shutting down (lame duck mode); the client moves to another server');
      }
    }
  }

  /**
   * While the client reconnects it only reports the addresses it tries: a server that
   * now refuses this node's certificate (or one the node no longer trusts) would look
   * like an outage. After `ms` without a connection, probe the servers as start() does
   * and log why they refuse, or that none answers; again every minute while it lasts.
   */
  #checkReconnectLater(ms: number): void {
    clearTimeout(this.#reconnectCheck);
    this.#reconnectCheck = setTimeout(() => {
      if (this.#state !== 'started' || this.#brokerUp) return;
      const { servers, user, pass } = this.#endpoints;
      const down = `${Math.round((Date.now() - this.#disconnectedAt) / 1000)} s`;
      checkTls(servers, this.init.tls, { user, pass }).then(
        () => {
          if (this.#state !== 'started' || this.#brokerUp) return;
          this.log.warn({ servers, down }, 'nats: still disconnected from every server');
          this.#checkReconnectLater(60_000);
        },
        (err: unknown) => {
          if (this.#state !== 'started' || this.#brokerUp) return;
          this.#counters.tlsRefusals++;
          this.log.error({ servers, down, reason: explainConnectError(err, this.init.tls) }, 'nats: cannot reconnect: a TLS handshake fails');
          this.#checkReconnectLater(60_000);
        },
      );
    }, ms);
    this.#reconnectCheck.unref();
  }

  // ------------------------------------------------------------ publishing

  #poke(): void {
    this.#woken = true;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = () => {
        this.#woken = false;
        done();
      };
    });
  }

  /**
   * Ships this node's own log entries, in order, from what the stream already holds.
   * A failed publish restarts shipping from the first unacknowledged entry; message
   * ids make the re-sent ones that did arrive duplicates the stream drops.
   */
  async #publishLoop(): Promise<void> {
    const node = this.#node as LocalNode;
    const publisher = new AsyncPublisher(this.#nc as NatsConnection, this.#cfg.publishTimeoutMs);
    let pos = this.#ownStart();
    node.retainLog?.(OUTBOX_HOLD, pos);
    // Publishes awaiting their PubAck; a full window waits for one slot, not a race over all.
    const inflight = new Set<Promise<void>>();
    let onSlot: (() => void) | undefined;
    let failed = false;
    // Each message expects the previous one to be the stream's last: after a failed
    // publish every later one fails too, so the stream never holds entries out of order.
    let prevId = this.#lastStoredId;
    while (this.#state === 'started') {
      if (failed) {
        await Promise.allSettled([...inflight]);
        failed = false;
        await this.#sleep(250);
        // Start again from what the stream really holds: acknowledgements may have
        // been lost for messages it stored.
        try {
          const stored = await this.#lastPublished();
          if (stored > this.#publishedOriginSeq) this.#onPubAck(this.#publishedOriginSeq + 1, stored, this.#ownSeqBefore(stored + 1));
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'nats: cannot read the stream yet');
          failed = true;
          continue;
        }
        prevId = this.#lastStoredId;
        pos = this.#ownStart();
        node.retainLog?.(OUTBOX_HOLD, pos);
        continue;
      }
      const entries = node.readLog(pos, this.mode === 'batched' ? this.#cfg.batchMaxEntries : 256);
      if (entries.length === 0) {
        await this.#sleep(1000);
        continue;
      }
      pos = (entries.at(-1) as LogEntry).seq + 1;
      const own = entries.filter((e) => e.origin === node.name && e.originSeq > this.#publishedOriginSeq);
      if (own.length === 0) continue;
      const messages = this.mode === 'batched' ? this.#chunk(own) : own.map((e) => [e]);
      for (const batch of messages) {
        while (inflight.size >= this.#cfg.maxInFlight) await new Promise<void>((resolve) => (onSlot = resolve));
        if (failed || this.#state !== 'started') break;
        const first = batch[0] as LogEntry;
        const last = batch.at(-1) as LogEntry;
        const id = `${node.name}:${first.originSeq}-${last.originSeq}`;
        const expected = prevId;
        prevId = id;
        const p: Promise<void> = publisher
          .publish(`${this.#cfg.subjectPrefix}.${node.name}.${first.table}`, encodeBatch(batch), id, expected)
          .then(() => {
            // stored, or a duplicate of one stored before: shipped either way
            this.#counters.messagesPublished++;
            this.#counters.published += batch.length;
            this.#lastStoredId = id;
            this.#onPubAck(first.originSeq, last.originSeq, last.seq);
          })
          .catch((err: Error) => {
            if (!failed) this.log.warn({ err: err.message, originSeq: first.originSeq }, 'nats: publish failed; retrying from the first unacknowledged entry');
            this.#counters.publishErrors++;
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
    publisher.close(); // rejects what is still waiting for a PubAck
    await Promise.allSettled([...inflight]);
  }

  /** The local seq just before own entry `originSeq` (or the log's end). */
  #ownSeqBefore(originSeq: number): number {
    const node = this.#node as LocalNode;
    const start = node.logStart(this.#cursorsWithOwn(originSeq - 1));
    return start.kind === 'stream' ? start.fromSeq - 1 : node.lastSeq();
  }

  /** Where shipping resumes: after the last own entry the stream acknowledged. */
  #ownStart(): number {
    const node = this.#node as LocalNode;
    const start = node.logStart(this.#cursorsWithOwn(this.#publishedOriginSeq));
    if (start.kind === 'stream') return start.fromSeq;
    // The stream lost own entries (its limits discarded them while this node was down)
    // that the log no longer holds either: nothing can ship them again. Ship on after
    // them; a peer that lacks them finds the hole in the stream and merges a snapshot
    // of this node, which holds their records.
    const through = start.oldest > 0 ? start.oldest - 1 : (node.cursors()[node.name] ?? 0);
    this.log.error(
      { lost: `${this.#publishedOriginSeq + 1}..${through}` },
      'nats: own entries the stream lacks were pruned from the log; shipping resumes after them, and peers that lack them merge a snapshot',
    );
    this.#counters.ownEntriesSkipped += through - this.#publishedOriginSeq;
    this.#publishedOriginSeq = through;
    const resumed = node.logStart(this.#cursorsWithOwn(through));
    const from = resumed.kind === 'stream' ? resumed.fromSeq : node.lastSeq() + 1;
    if (from - 1 > this.#shippedSeq) this.#shippedSeq = from - 1;
    return from;
  }

  /** This node's cursors, with its own one replaced by `ownSeq`. */
  #cursorsWithOwn(ownSeq: number): Record<string, number> {
    const node = this.#node as LocalNode;
    const cursors: Record<string, number> = {};
    for (const [o, n] of Object.entries(node.cursors())) cursors[o] = o === node.name ? ownSeq : n;
    return cursors;
  }

  /** Acknowledged runs of own entries that arrived ahead of an earlier one: first originSeq → run. */
  readonly #ackedRuns = new Map<number, { last: number; seq: number }>();

  /**
   * PubAcks can arrive out of order when many are in flight: a run counts as shipped
   * once every own entry before it has been acknowledged too.
   */
  #onPubAck(first: number, last: number, seq: number): void {
    this.#ackedRuns.set(first, { last, seq });
    for (let run = this.#ackedRuns.get(this.#publishedOriginSeq + 1); run; run = this.#ackedRuns.get(this.#publishedOriginSeq + 1)) {
      this.#ackedRuns.delete(this.#publishedOriginSeq + 1);
      this.#publishedOriginSeq = run.last;
      if (run.seq > this.#shippedSeq) this.#shippedSeq = run.seq;
    }
    // Retention may now prune what the stream holds, never what it still lacks.
    this.#node?.retainLog?.(OUTBOX_HOLD, this.#shippedSeq + 1);
    // Waiters are added in commit order, so the shipped ones are at the front.
    for (const [s, ws] of this.#shipWaiters) {
      if (s > this.#shippedSeq) break;
      this.#shipWaiters.delete(s);
      for (const w of ws) w.resolve();
    }
  }

  #chunk(entries: LogEntry[]): LogEntry[][] {
    const out: LogEntry[][] = [];
    let cur: LogEntry[] = [];
    let bytes = 0;
    for (const e of entries) {
      const size = 200 + JSON.stringify(e.value ?? null).length;
      if (cur.length > 0 && (bytes + size > this.#cfg.batchMaxBytes || cur.length >= this.#cfg.batchMaxEntries)) {
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

  // ------------------------------------------------------------ consuming

  /** Finds other nodes' streams and starts a durable pull consumer on each new one. */
  async #discover(): Promise<void> {
    if (this.#state !== 'started') return;
    const node = this.#node as LocalNode;
    for (const { origin, stream: name } of await this.#peerStreams()) {
      let o = this.#origins.get(origin);
      if (!o) {
        o = { name: origin, stream: name, consumer: undefined, messages: undefined, running: false, pending: 0, ackPending: 0, redelivered: 0, fetched: 0, applied: 0, deferred: 0, lastAppliedVersionMs: 0, resyncs: 0, repositions: 0, reposition: true, lastRepositionMs: 0 };
        this.#origins.set(origin, o);
      }
      if (!o.running) {
        o.running = true;
        this.#loops.push(this.#consume(o, node));
      } else if (o.consumer) {
        try {
          const ci = await o.consumer.info(true);
          o.pending = ci.num_pending;
          o.ackPending = ci.num_ack_pending;
          o.redelivered = ci.num_redelivered;
        } catch {
          // broker unavailable; the consume loop reports it
        }
      }
    }
  }

  /** Every other node's stream in the NATS cluster, with the node (origin) it belongs to. */
  async #peerStreams(): Promise<{ origin: string; stream: string }[]> {
    const prefix = `${this.#cfg.streamPrefix}_`;
    const out: { origin: string; stream: string }[] = [];
    for await (const si of (this.#jsm as JetStreamManager).streams.list()) {
      const name = si.config.name;
      if (name.startsWith(prefix) && name !== this.#stream) out.push({ origin: name.slice(prefix.length), stream: name });
    }
    return out;
  }

  async #consume(o: Origin, node: LocalNode): Promise<void> {
    const js = this.#js as JetStreamClient;
    while (this.#state === 'started' && o.running) {
      try {
        if (!o.consumer || o.reposition) {
          // a gap that re-positioning did not close (entries the stream never got) must not spin
          if (o.consumer && Date.now() - o.lastRepositionMs < 1000) await new Promise((r) => setTimeout(r, 500));
          o.consumer = undefined;
          o.lastRepositionMs = Date.now();
          await this.#positionConsumer(o, node);
          o.consumer = await js.consumers.get(o.stream, node.name);
        }
        // consume() keeps pull requests open, so messages arrive as they are stored;
        // what arrived together is applied together, one batch at a time, in order.
        const messages = await o.consumer.consume({ max_messages: this.#cfg.fetchBatch, expires: this.#cfg.fetchExpiresMs });
        o.messages = messages;
        if (this.#state !== 'started') return void messages.stop();
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
          if (b.length === 0 || failure || o.reposition) return;
          try {
            await this.#applyMessages(o, node, b);
          } catch (err) {
            failure = { err };
            messages.stop();
          }
        };
        for await (const m of messages) {
          if (failure) break;
          buf.push(m);
          if (buf.length >= this.#cfg.fetchBatch) {
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
        if (this.#state !== 'started') return;
        this.log.warn({ origin: o.name, err: (err as Error).message }, 'nats: consuming failed; retrying');
        o.consumer = undefined;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Applies a fetched batch in one store transaction, then acknowledges what it covers. */
  async #applyMessages(o: Origin, node: LocalNode, msgs: JsMsg[]): Promise<void> {
    o.fetched += msgs.length;
    const decoded: { msg: JsMsg; entries: LogEntry[] }[] = [];
    for (const msg of msgs) {
      try {
        const entries = decodeBatch(msg.data);
        if (entries.some((e) => e.origin !== o.name)) throw new MalformedFrameError(`message on ${o.stream} carries another origin`);
        decoded.push({ msg, entries });
      } catch (err) {
        this.log.error({ origin: o.name, streamSeq: msg.seq, err: (err as Error).message }, 'nats: dropping a malformed message');
        msg.term();
      }
    }
    const all = decoded.flatMap((d) => d.entries);
    const r = await node.applyRemote(all);
    o.applied += r.applied;
    o.deferred += r.deferred;
    const cursor = r.cursors[o.name] ?? 0;
    // Acknowledge (AckAll) through the last message before the first one that is not
    // fully applied; that one and the rest come again, after the missing entries.
    let lastDone: JsMsg | undefined;
    let firstPending = -1;
    for (const [i, { msg, entries }] of decoded.entries()) {
      const last = entries.at(-1);
      if (last && last.originSeq > cursor) {
        firstPending = i;
        break;
      }
      lastDone = msg;
    }
    lastDone?.ack();
    if (firstPending >= 0) {
      // A gap: what is missing was delivered before (to a process that died, or ahead
      // of a failed batch) and would come back only after ack_wait, while everything
      // after it would be nak-ed round after round. Re-create the consumer at the
      // cursor instead; if the stream no longer holds the gap, merge a snapshot first.
      await this.#resyncIfMissing(o, node, cursor);
      o.reposition = true;
      o.messages?.stop();
    }
    const newest = all.at(-1);
    if (newest) o.lastAppliedVersionMs = newest.version[0];
    if (r.applied > 0) this.#appliedDirty = true;
  }

  /**
   * (Re-)creates this node's durable consumer on `o.stream` so that delivery starts at
   * the first message holding an entry after this node's cursor: positioned by what
   * this node has applied, not by what the broker remembers delivering (a restarted
   * or wiped node, or one that saw a gap).
   */
  async #positionConsumer(o: Origin, node: LocalNode): Promise<void> {
    const jsm = this.#jsm as JetStreamManager;
    const next = (node.cursors()[o.name] ?? 0) + 1;
    const startSeq = await this.#streamSeqOf(o.stream, next);
    try {
      await jsm.consumers.delete(o.stream, node.name);
    } catch (err) {
      if ((err as { code?: string }).code !== '404') throw err;
    }
    await jsm.consumers.add(o.stream, {
      durable_name: node.name,
      // One ack per applied batch (it covers every earlier message) instead of one per message.
      ack_policy: AckPolicy.All,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
      ack_wait: nanos(this.#cfg.ackWaitMs),
      max_ack_pending: 20_000,
    });
    o.reposition = false;
    o.repositions++;
    this.log.debug({ origin: o.name, nextOriginSeq: next, startSeq }, 'nats: consumer positioned at the cursor');
  }

  /**
   * The stream sequence of the first message whose entries reach `originSeq` (the
   * stream's next sequence when none does). A stream holds an origin's entries in
   * order, so this is a binary search over message reads.
   */
  async #streamSeqOf(stream: string, originSeq: number): Promise<number> {
    const jsm = this.#jsm as JetStreamManager;
    const info = await jsm.streams.info(stream);
    if (info.state.messages === 0) return info.state.last_seq + 1;
    /** Last originSeq in message `seq`, or undefined when the limits discarded it meanwhile. */
    const lastAt = async (seq: number): Promise<number | undefined> => {
      try {
        return decodeBatch((await jsm.streams.getMessage(stream, { seq })).data).at(-1)?.originSeq ?? 0;
      } catch (err) {
        if ((err as { code?: string }).code === '404') return undefined;
        throw err;
      }
    };
    let lo = info.state.first_seq;
    let hi = info.state.last_seq + 1; // answer in [lo, hi]
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const last = await lastAt(mid);
      // discarded from the front while we search: everything up to it is gone
      if (last === undefined || last < originSeq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // ------------------------------------------------------------ merge resync

  /**
   * A gap that the stream cannot fill (its limits discarded the entries this node
   * needs, or it never got them: an origin whose own stream and log both lost entries
   * ships on after them) is closed by a merge resync from the origin, or else from any
   * peer.
   */
  async #resyncIfMissing(o: Origin, node: LocalNode, cursor: number): Promise<void> {
    const next = await this.#firstEntryAfter(o.stream, cursor);
    if (!next || next.originSeq <= cursor + 1) return; // held (redelivery fills it), or not stored yet
    this.log.warn(
      { origin: o.name, cursor, nextInStream: next.originSeq },
      'nats: MERGE RESYNC: the stream lacks entries this node has not applied; merging a snapshot',
    );
    o.resyncs++;
    const sources = [o.name, ...[...this.#origins.keys()].filter((n) => n !== o.name)];
    for (const source of sources) {
      try {
        await this.#requestSnapshot(source, node);
      } catch (err) {
        this.log.warn({ origin: o.name, source, err: (err as Error).message }, 'nats: snapshot source failed; trying the next');
        continue;
      }
      if ((node.cursors()[o.name] ?? 0) + 1 >= next.originSeq) {
        this.log.warn({ origin: o.name, source, cursor: node.cursors()[o.name] }, 'nats: merge resync complete');
        return;
      }
    }
    this.log.error({ origin: o.name }, 'nats: no node could resync this origin yet; will retry');
  }

  /**
   * The first entry of the stream's first message that holds an entry after `cursor`
   * (undefined when none does yet). The stream's limits may discard that message
   * between the search and the read: search again.
   */
  async #firstEntryAfter(stream: string, cursor: number): Promise<LogEntry | undefined> {
    const jsm = this.#jsm as JetStreamManager;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const seq = await this.#streamSeqOf(stream, cursor + 1);
      try {
        return decodeBatch((await jsm.streams.getMessage(stream, { seq })).data)[0];
      } catch (err) {
        if ((err as { code?: string }).code !== '404') throw err;
      }
    }
    return undefined; // past the stream's end, or still being discarded: the caller looks again later
  }

  /**
   * Asks `source` for a snapshot; it sends begin (cursors), record chunks and end to
   * our inbox as requests, each answered once merged, so the transfer is paced by us.
   */
  async #requestSnapshot(source: string, node: LocalNode): Promise<void> {
    const nc = this.#nc as NatsConnection;
    const inbox = createInbox();
    let cursors: Cursors = {};
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
        const type = m.data[0];
        if (type === 1) cursors = decodeCursors(m.data.subarray(1));
        else if (type === 2) await node.mergeSnapshot(decodeSnapshot(m.data.subarray(1)));
        else if (type === 3) {
          await node.adoptCursors(cursors);
          m.respond();
          return;
        }
        m.respond();
        arm();
      }
      throw new Error('snapshot subscription closed');
    })();
    // once the race is decided (idle, stopped), unsubscribing ends this loop with an error nobody awaits
    done.catch(() => {});
    try {
      // A request, so a source that is not there is known at once: the server answers
      // "no responders" instead of leaving us to wait for silence.
      try {
        await nc.request(`${this.#cfg.subjectPrefix}._snapshot.${source}`, new TextEncoder().encode(inbox), { timeout: SNAPSHOT_IDLE_MS });
      } catch (err) {
        const code = (err as { code?: string }).code;
        throw new Error(code === '503' ? `${source} is not connected (no responders)` : `${source} did not accept the snapshot request: ${(err as Error).message}`);
      }
      arm();
      await Promise.race([done, idle, this.#stopped.then(() => Promise.reject(new Error('stopped')))]);
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
  }

  /**
   * Serves a merge resync: the request carries the inbox to send the snapshot to and is
   * answered at once (accepted); the snapshot then goes to that inbox, one request per
   * message, each answered by the receiver once merged.
   */
  async #serveSnapshot(req: Msg): Promise<void> {
    const nc = this.#nc as NatsConnection;
    const node = this.#node as LocalNode;
    const to = new TextDecoder().decode(req.data);
    if (!req.reply || !/^[!-~]+$/.test(to)) return; // not a snapshot request of ours
    req.respond();
    const snap = node.snapshot(500);
    const send = (type: number, body: Uint8Array) => {
      const data = new Uint8Array(body.length + 1);
      data[0] = type;
      data.set(body, 1);
      return nc.request(to, data, { timeout: 30_000 });
    };
    this.log.warn({ to }, 'nats: serving a merge resync snapshot');
    await send(1, encodeCursors(snap.cursors));
    for (const batch of snap.batches) {
      if (this.#state !== 'started') return;
      await send(2, encodeSnapshot(batch));
    }
    await send(3, new Uint8Array(0));
  }

  /** Tells the other nodes how far this node applied each origin (for their confirmations). */
  #announceApplied(): void {
    if (!this.#appliedDirty || this.#state !== 'started' || !this.#nc || this.#nc.isClosed()) return;
    this.#appliedDirty = false;
    const node = this.#node as LocalNode;
    this.#nc.publish(`${this.#cfg.subjectPrefix}._applied.${node.name}`, encodeCursors(node.cursors()));
  }
}

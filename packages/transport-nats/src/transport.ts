import type { NatsConnection } from 'nats';
import {
  Lifecycle,
  TransportStateError,
  peerLag,
  warnLogger,
  whenPeersConnected,
  type LiveConfirmation,
  type LocalNode,
  type Logger,
  type Member,
  type PeerStatus,
  type PeersReady,
  type ReplicationTransport,
  type StartOptions,
  type TransportState,
  type TransportStatus,
} from '@replica/transport-api';
import { StreamAdmin, whileStarting } from './admin.js';
import { Confirmations } from './confirmations.js';
import { BrokerConnection } from './connection.js';
import type { NatsContext } from './context.js';
import { Discovery } from './discovery.js';
import { PEER_SILENT_MS, PublishMode, resolveOptions, type NatsConfig, type NatsInit } from './options.js';
import { Outbox } from './outbox.js';
import { recoverOwnWrites, type StartStep } from './recovery.js';
import { Removals } from './removals.js';
import { ResyncCarrier } from './resync.js';
import { Names } from './subjects.js';

export interface NatsComponents {
  /** Default `warnLogger`: warnings and errors to stderr, one line each. `silentLogger` silences the transport. */
  readonly logger?: Logger;
}

/** A NATS transport; `shipped(seq)` is what per-write mode makes writes wait for. */
export interface NatsTransport extends ReplicationTransport {
  readonly mode: PublishMode;
  /**
   * Makes a started transport use its TLS files as they are now (a rotated client
   * certificate, a new CA file), without a restart: the files are checked, then the
   * client reconnects and reads them (publishes in flight are retried from the log, as
   * after any reconnect). Files that cannot be used, or that every reachable server
   * refuses, are a {@link ConfigError} saying why, and the connection in use stays.
   */
  reloadTls(): Promise<void>;
  /**
   * Resolves once this node consumes every peer's stream over a live broker connection,
   * or after `timeoutMs` with `ready: false` and the peers still missing; rejects if the
   * transport stops meanwhile.
   */
  whenReady(timeoutMs: number): Promise<PeersReady>;
  shipped(seq: number): Promise<void>;
  waitForReplicas(seq: number, count: number, timeoutMs: number): Promise<number>;
}

/**
 * Replication through a NATS/JetStream cluster: each node appends its committed log
 * entries to a stream it owns (from its log, so a broker outage delays replication
 * but loses no write; message ids make a retried publish stored once), and reads
 * every other node's stream with a durable pull consumer, applying each fetched batch
 * in one store transaction before acknowledging it.
 */
export function natsTransport(init: NatsInit, components: NatsComponents = {}): NatsTransport {
  return new Nats(resolveOptions(init), components.logger ?? warnLogger);
}

/** The parts of a started transport. */
interface Running {
  readonly node: LocalNode;
  readonly outbox: Outbox;
  readonly confirmations: Confirmations;
  discovery?: Discovery;
  removals?: Removals;
}

/** Wires the parts together and runs them from start() to stop(). */
class Nats implements NatsTransport {
  readonly kind = 'nats';
  readonly mode: PublishMode;
  readonly #lifecycle = new Lifecycle(this.kind);
  readonly #connection: BrokerConnection;
  readonly #loops: Promise<void>[] = [];
  #run: Running | undefined;
  #unsubscribe: (() => void) | undefined;
  /** The latest member list given to {@link setMembers}; applied at start and on every change. */
  #members: readonly Member[] | undefined;

  constructor(
    private readonly cfg: NatsConfig,
    private readonly log: Logger,
  ) {
    this.mode = cfg.mode;
    this.#connection = new BrokerConnection(cfg, log, this.#lifecycle);
  }

  get state(): TransportState {
    return this.#lifecycle.state;
  }

  async start(node: LocalNode, opts: StartOptions = {}): Promise<void> {
    this.#lifecycle.begin();
    const ctx: NatsContext = {
      node,
      cfg: this.cfg,
      names: new Names(node.name, this.cfg),
      log: this.log,
      lifecycle: this.#lifecycle,
      stopped: this.#lifecycle.stopped,
      track: (loop) => void this.#loops.push(loop),
    };
    const run: Running = (this.#run = {
      node,
      outbox: new Outbox(ctx),
      // A peer that announces before its stream was found is looked for at once (a removed one is not).
      confirmations: new Confirmations(ctx, (peer) => {
        if (run.discovery?.lacks(peer)) run.discovery.discoverSoon();
      }),
    });
    let nc: NatsConnection;
    try {
      nc = await this.#connection.open(node.name);
    } catch (err) {
      this.#lifecycle.end();
      throw err;
    }
    try {
      await this.#startOn(nc, ctx, run, opts);
    } catch (err) {
      await this.stop(); // nothing keeps running (or reconnecting) after a failed start
      throw err;
    }
  }

  async #startOn(nc: NatsConnection, ctx: NatsContext, run: Running, opts: StartOptions): Promise<void> {
    const { node, cfg, log } = ctx;
    const { outbox, confirmations } = run;
    ctx.track(this.#connection.watch(this.#lifecycle.stopped, () => outbox.reconnected()));
    const starting: StartStep = (what, step) => whileStarting(what, step, { timeoutMs: cfg.startTimeoutMs, open: () => this.#lifecycle.started, log });
    const admin = new StreamAdmin(await starting('reaching JetStream', () => nc.jetstreamManager()), cfg, ctx.names);
    const js = nc.jetstream({ timeout: cfg.publishTimeoutMs });
    await starting('creating the stream', () => admin.ensureOwnStream());
    const head = await starting('reading the stream', () => admin.ownHead());
    const resync = new ResyncCarrier(ctx, nc);
    await recoverOwnWrites(ctx, admin, resync, head.originSeq, starting);
    this.#unsubscribe = node.onCommit(() => outbox.wake());
    const resyncFrom = (source: string) => resync.request(source);
    const discovery = (run.discovery = new Discovery(ctx, { js, admin, resyncFrom, applied: () => confirmations.applied() }));
    // Removed members are known before the first look for streams: theirs is never consumed as a peer's.
    const removals = (run.removals = new Removals(ctx, { admin, discovery, confirmations, resyncFrom }, cfg.removalDrainMs));
    if (this.#members) removals.apply(this.#members);
    // Peers announce what they applied, so this node can confirm replicas.
    ctx.track(confirmations.listen(nc));
    // Any node can serve a merge resync of what it holds.
    ctx.track(resync.serve());
    ctx.track(outbox.run(nc, admin, head));
    await starting('listing streams', () => discovery.discover());
    discovery.every(cfg.discoverIntervalMs);
    removals.start();
    confirmations.announce(nc);
    this.#lifecycle.stopOn(opts.signal, () => this.stop());
    log.info({ server: nc.getServer(), stream: ctx.names.ownStream, mode: this.mode }, 'nats: replicating through JetStream');
  }

  async stop(): Promise<void> {
    const run = this.#run;
    run?.outbox.release();
    if (!this.#lifecycle.end()) return;
    this.#unsubscribe?.();
    run?.discovery?.stop();
    run?.removals?.stop();
    run?.confirmations.stop();
    run?.outbox.close();
    await this.#connection.close();
    // The client's status and fetch iterators do not always end on close; the loops
    // race them against the lifecycle's `stopped`, so every loop is finished here.
    await Promise.allSettled(this.#loops);
  }

  status(): TransportStatus {
    const started = this.#lifecycle.started;
    const run = this.#run;
    const node = started ? run?.node : undefined;
    const connected = started && this.#connection.connected;
    const peers: PeerStatus[] = [...(run?.discovery?.consumers ?? [])].map((c) => {
      const ackedSeq = node && run ? run.confirmations.ackedSeqOf(c.origin) : 0;
      return {
        name: c.origin,
        connected: connected && c.running,
        ackedSeq,
        ...peerLag(node, ackedSeq),
        appliedThrough: run?.confirmations.appliedThrough(c.origin) ?? {},
        ...(c.holds === undefined ? {} : { holds: this.#holds(run, c.origin, c.holds) }),
        counters: { ...c.counters },
        gauges: { ...c.gauges },
        info: { stream: c.stream, consumer: node?.name ?? '' },
      };
    });
    const outbox = run?.outbox;
    return {
      kind: this.kind,
      started,
      peers,
      counters: { ...(outbox?.counters ?? IDLE_OUTBOX), ...this.#connection.counters },
      gauges: { shippedSeq: outbox?.shippedSeq ?? 0 },
      refused: {},
    };
  }

  /**
   * What peer `origin` held when its consumer was last (re-)created: the last entry of its
   * stream, and of every removed member what the peer announced applying (a new node
   * takes that from the removed member's stream or a snapshot, not from a peer's stream).
   */
  #holds(run: Running | undefined, origin: string, streamHead: number): Record<string, number> {
    const holds: Record<string, number> = { [origin]: streamHead };
    const announced = run?.confirmations.appliedThrough(origin) ?? {};
    for (const removed of run?.removals?.removed() ?? []) {
      const n = announced[removed];
      if (n !== undefined) holds[removed] = n;
    }
    return holds;
  }

  /**
   * The peers whose stream this node consumes over a live broker connection and that
   * announced their cursors within {@link PEER_SILENT_MS}: a peer announces at least every
   * 2 s, so one silent longer is down (or cut off from the broker) for all this node can
   * tell, and its consumer here running does not make it a replica that confirms.
   */
  liveConfirmations(): readonly LiveConfirmation[] {
    const run = this.#run;
    if (!this.#lifecycle.started || !run || !this.#connection.connected) return [];
    const now = Date.now();
    const out: LiveConfirmation[] = [];
    for (const c of run.discovery?.consumers ?? []) {
      const heard = run.confirmations.heardAt(c.origin);
      if (!c.running || heard === undefined || now - heard > PEER_SILENT_MS) continue;
      out.push({ name: c.origin, ownApplied: run.confirmations.ownApplied(c.origin) });
    }
    return out;
  }

  peerNames(): readonly string[] {
    return this.#run?.discovery?.names() ?? [];
  }

  /** per-write: resolves when the broker stored local entry `seq`; batched: at once. */
  shipped(seq: number): Promise<void> {
    const outbox = this.#run?.outbox;
    if (this.mode === PublishMode.batched || seq <= (outbox?.shippedSeq ?? 0)) return Promise.resolve();
    if (!this.#lifecycle.started || !outbox) return Promise.reject(new TransportStateError(this.kind, this.#lifecycle.state, 'transport not started'));
    return outbox.shipped(seq);
  }

  /**
   * A removed member leaves the peers at once and its stream is never consumed as a peer's
   * again; its stream is still applied to its end before this node's consumer on it is
   * deleted, and deleted itself once every active member applied it (see {@link Removals}).
   * When this node is the removed one, it stops consuming and keeps its stream.
   */
  setMembers(members: readonly Member[]): void {
    this.#members = members;
    if (this.#lifecycle.started) this.#run?.removals?.apply(members);
  }

  whenReady(timeoutMs: number): Promise<PeersReady> {
    const self = this.#run?.node.name;
    const peers = (this.#members ?? []).filter((m) => m.state === 'active' && m.name !== self).map((m) => m.name);
    return whenPeersConnected(this, { timeoutMs, peers });
  }

  waitForReplicas(seq: number, count: number, timeoutMs: number): Promise<number> {
    return this.#run?.confirmations.waitForReplicas(seq, count, timeoutMs) ?? Promise.resolve(0);
  }

  async reloadTls(): Promise<void> {
    if (!this.#lifecycle.started) throw new TransportStateError(this.kind, this.#lifecycle.state, 'TLS files can be reloaded only while the transport runs');
    await this.#connection.reloadTls();
  }
}

/** The outbox counters before start(). */
const IDLE_OUTBOX: Outbox['counters'] = { published: 0, publishErrors: 0, messagesPublished: 0, ownEntriesSkipped: 0, brokerStorageFull: 0 };

import type { TLSSocket } from 'node:tls';
import {
  ConfirmationWaiters,
  Lifecycle,
  TransportState,
  TransportStateError,
  type ConfigError,
  type LocalNode,
  type LiveConfirmation,
  type Logger,
  whenPeersConnected,
  type Member,
  type PeersReady,
  type ReplicationTransport,
  type StartOptions,
  type TransportStatus,
} from '@replica/transport-api';
import { Admission } from './admission.js';
import { Frame, encodeControl } from './frames.js';
import { Link } from './link.js';
import { Mesh, type MeshHost } from './mesh.js';
import { PLEXUS, REMOVAL_DRAIN_MAX_FACTOR, type PlexusConfig, type PlexusInit } from './options.js';
import { rosterOf } from './roster.js';
import { Session, type SessionHost } from './session.js';
import { subscriptionFor } from './subscription.js';

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
export interface PlexusTransport extends ReplicationTransport {
  /** Where it listens once started (useful with port 0). */
  address(): { host: string; port: number } | undefined;
  /**
   * Replaces the TLS material of a started transport without a restart (a rotated
   * certificate, a CA file holding an old and a new CA during a rollover): connections
   * made from now on, dialled or accepted, use it; live connections keep streaming until
   * they reconnect. Material that is not usable (unreadable, a certificate naming another
   * node, a key that does not belong to it, no CA in the file that signed it) is refused
   * with a {@link ConfigError} listing why, and the material in use stays.
   */
  reloadTls(tls: PlexusInit['tls']): void;
  /**
   * Resolves once every peer is connected, or after `timeoutMs` with `ready: false` and the
   * peers still missing; rejects if the transport stops meanwhile.
   */
  whenReady(timeoutMs: number): Promise<PeersReady>;
  waitForReplicas(seq: number, count: number, timeoutMs: number): Promise<number>;
}

/** How long before a certificate expires the transport starts warning. */
export const CERTIFICATE_WARNING_MS = 14 * 24 * 3600_000;
/** How often expiry is checked while running. */
const EXPIRY_CHECK_MS = 12 * 3600_000;

/** The composition root: lifecycle, links, and the host of the mesh and of every session. */
export class Plexus implements PlexusTransport, MeshHost, SessionHost {
  readonly kind = PLEXUS;
  readonly #lifecycle = new Lifecycle(PLEXUS);
  readonly #links = new Map<string, Link>();
  readonly #waiters = new ConfirmationWaiters();
  readonly #admission: Admission;
  readonly #mesh: Mesh;
  #node: LocalNode | undefined;
  /** The latest member list given to {@link setMembers}; applied at start and on every change. */
  #members: readonly Member[] = [];
  /** This node was removed and is handing over its last writes (see {@link #leave}). */
  #leaving = false;
  #unsubscribe: (() => void) | undefined;
  #expiryCheck: NodeJS.Timeout | undefined;

  constructor(
    /** @internal */ readonly config: PlexusConfig,
    /** @internal */ readonly log: Logger,
  ) {
    this.#admission = new Admission(config.tls, log);
    this.#mesh = new Mesh(config, this.#links, this.#admission, this, log);
  }

  get state(): TransportState {
    return this.#lifecycle.state;
  }

  /** @internal */
  get running(): boolean {
    return this.#lifecycle.started;
  }

  /** @internal The store being replicated; sessions exist only while it is set. */
  get node(): LocalNode {
    return this.#node as LocalNode;
  }

  address(): { host: string; port: number } | undefined {
    return this.#mesh.address();
  }

  async start(node: LocalNode, opts: StartOptions = {}): Promise<void> {
    if (this.#lifecycle.state === TransportState.new) {
      try {
        this.#admission.replaceTls(this.config.tls, node.name);
      } catch (err) {
        throw new TransportStateError(PLEXUS, 'new', `TLS material is not usable: ${(err as ConfigError).problems.join('; ')}`);
      }
    }
    this.#lifecycle.begin();
    this.#node = node;
    this.#applyMembers();
    const unsubscribe = node.onCommit(() => {
      for (const link of this.#links.values()) link.wake();
    });
    this.#unsubscribe = unsubscribe;
    try {
      await this.#mesh.listen();
    } catch (err) {
      this.#lifecycle.end();
      unsubscribe();
      throw err;
    }
    this.#mesh.start();
    this.#warnIfExpiring();
    this.#expiryCheck = setInterval(() => this.#warnIfExpiring(), EXPIRY_CHECK_MS);
    this.#expiryCheck.unref();
    this.#lifecycle.stopOn(opts.signal, () => this.stop());
    this.log.info({ listen: this.address(), peers: [...this.#links.keys()] }, 'plexus: listening for peers');
  }

  async stop(): Promise<void> {
    if (!this.#lifecycle.end()) return;
    this.#unsubscribe?.();
    clearInterval(this.#expiryCheck);
    const closed = this.#mesh.close();
    for (const link of this.#links.values()) link.session?.close('stopped');
    this.#waiters.notify();
    await closed;
  }

  status(): TransportStatus {
    const started = this.#lifecycle.started;
    const node = started ? this.#node : undefined; // a stopped node's store may be closed
    const peers = [...this.#links.values()].map((l) => l.status(node));
    const validity = this.#admission.validity;
    const now = Date.now();
    const gauges = validity ? { tlsCertificateExpirySeconds: Math.round((validity.certificateNotAfter - now) / 1000), tlsCaExpirySeconds: Math.round((validity.caNotAfter - now) / 1000) } : {};
    return { kind: this.kind, started, peers, counters: {}, gauges, refused: this.#admission.refused() };
  }

  reloadTls(tls: PlexusInit['tls']): void {
    if (!this.#lifecycle.started) throw new TransportStateError(PLEXUS, this.#lifecycle.state, 'TLS material can be reloaded only while the transport runs');
    this.#admission.replaceTls(tls, this.node.name);
    this.#mesh.useContext();
    this.log.info({ expiresAt: new Date(this.#admission.validity?.certificateNotAfter ?? 0).toISOString() }, 'plexus: TLS material reloaded; new connections use it');
    this.#warnIfExpiring();
  }

  /** Logs a warning from {@link CERTIFICATE_WARNING_MS} before this node's certificate or a CA expires, an error once one has. */
  #warnIfExpiring(): void {
    const v = this.#admission.validity;
    if (!v) return;
    const now = Date.now();
    for (const [what, notAfter] of [['certificate', v.certificateNotAfter], ['CA certificate', v.caNotAfter]] as const) {
      const left = notAfter - now;
      const at = new Date(notAfter).toISOString();
      if (left <= 0) this.log.error({ expiredAt: at }, `plexus: this node's ${what} has expired; peers refuse it: rotate it`);
      else if (left < CERTIFICATE_WARNING_MS) this.log.warn({ expiresAt: at, days: Math.floor(left / 86_400_000) }, `plexus: this node's ${what} expires soon: rotate it`);
    }
  }

  setMembers(members: readonly Member[]): void {
    this.#members = members;
    if (this.#node) this.#applyMembers();
  }

  /**
   * Makes the links what the seeds and the member list say: a link for every peer (dialled
   * now if this node dials it and the transport runs), none for a removed member (its
   * connection closed), a moved member reached at its new address from the next dial.
   */
  #applyMembers(): void {
    const self = this.node.name;
    const roster = rosterOf(self, this.config.peers, this.#members, (m) =>
      this.log.warn({ member: m.name, address: m.address }, 'plexus: a member has no usable replication address; not connecting to it'),
    );
    this.#admission.bar(roster.removed, roster.revoked);
    if (roster.selfRemoved) return this.#leave();
    this.#leaving = false;
    let changed = false;
    for (const [name, link] of this.#links) {
      const barred = this.#admission.barred(name, link.fingerprint || undefined);
      if (roster.peers.has(name) && !barred) continue;
      if (roster.peers.has(name)) {
        // Its certificate was revoked, the member stays: drop the connection, keep the link.
        this.log.warn({ peer: name, reason: barred }, 'plexus: closing the connection of a revoked certificate');
        link.session?.close(barred as string);
        continue;
      }
      this.#drop(link);
      changed = true;
    }
    for (const [name, peer] of roster.peers) {
      const link = this.#links.get(name);
      if (link) {
        if (link.peer.host !== peer.host || link.peer.port !== peer.port) {
          this.log.info({ peer: name, from: `${link.peer.host}:${link.peer.port}`, to: `${peer.host}:${peer.port}` }, 'plexus: peer moved; reached at its new address from the next connection');
          link.peer = peer;
        }
        continue;
      }
      const added = new Link(peer, self < name, this.config);
      this.#links.set(name, added);
      changed = true;
      if (this.#unsubscribe) {
        this.log.info({ peer: name, address: `${peer.host}:${peer.port}`, role: added.dialer ? 'dials' : 'accepts' }, 'plexus: peer added');
        this.#mesh.dial(added);
      }
    }
    if (changed) {
      this.#resubscribeAll();
      this.#waiters.notify();
    }
  }

  /**
   * A removed member: no longer a peer (not counted, never dialled or accepted again), but
   * a live connection stays open while its batches keep arriving (closed after
   * `removalDrainMs` without one, or `REMOVAL_DRAIN_MAX_FACTOR` times that in all), so
   * that the writes it acknowledged before it learned of its removal still arrive, however
   * far behind it was; it closes the connection itself once they did. A fixed drain lost
   * them when the member was more than a drain behind (seen under load).
   */
  #drop(link: Link): void {
    this.#forget(link);
    const session = link.session;
    if (!session?.connected) {
      session?.close('removed');
      this.log.warn({ peer: link.name }, 'plexus: peer removed from the cluster');
      return;
    }
    const idleMs = this.config.removalDrainMs;
    this.log.warn({ peer: link.name, drainIdleMs: idleMs }, 'plexus: peer removed from the cluster; taking its last writes until they stop arriving, then closing its connection');
    const started = Date.now();
    let batches = link.counters.batchesReceived;
    let lastBatch = started;
    const tick = setInterval(() => {
      const now = Date.now();
      if (link.counters.batchesReceived !== batches) {
        batches = link.counters.batchesReceived;
        lastBatch = now;
      }
      if (!session.connected || now - lastBatch >= idleMs || now - started >= idleMs * REMOVAL_DRAIN_MAX_FACTOR) {
        clearInterval(tick);
        session.close('removed');
      }
    }, Math.max(20, Math.floor(idleMs / 10)));
    tick.unref();
  }

  /** `link` is no peer any more: not counted, never dialled again, its connection refused from now on. */
  #forget(link: Link): void {
    link.dropped = true;
    clearTimeout(link.reconnectTimer);
    this.#links.delete(link.name);
  }

  /**
   * This node was removed: it hands its peers every entry of its log (the app refuses new
   * writes once removed), waiting for them to confirm as long as their confirmations keep
   * advancing (at most `removalDrainMs` without progress, `REMOVAL_DRAIN_MAX_FACTOR` times
   * that in all), then closes every connection and replicates with nobody.
   */
  #leave(): void {
    if (this.#leaving || this.#links.size === 0) return;
    this.#leaving = true;
    const links = [...this.#links.values()];
    this.log.error({ node: this.node.name, peers: links.map((l) => l.name) }, 'plexus: this node was removed from the cluster; handing its last writes to its peers, then disconnecting');
    const idleMs = this.config.removalDrainMs;
    const last = Date.now() + idleMs * REMOVAL_DRAIN_MAX_FACTOR;
    const drain = async (): Promise<void> => {
      for (;;) {
        const target = this.#lifecycle.started ? this.node.lastSeq() : 0;
        const connected = links.filter((l) => l.connected);
        const confirmed = () => connected.reduce((s, l) => s + l.ackedSeq, 0);
        const before = confirmed();
        const left = Math.min(idleMs, last - Date.now());
        if (connected.length === 0 || left <= 0) return;
        // A peer that went away in the meantime no longer takes anything from this node.
        const n = await this.#waiters.wait(() => connected.filter((l) => l.ackedSeq >= target || !l.connected).length, connected.length, left, () => this.#lifecycle.started);
        if (!this.#lifecycle.started) return;
        if (n === connected.length && this.node.lastSeq() === target) return;
        // not all confirmed within idleMs: go on only while the confirmations advance
        if (n < connected.length && confirmed() === before) return;
      }
    };
    void drain().then(() => {
      for (const link of links) {
        this.#forget(link);
        link.session?.close('removed');
      }
      this.#waiters.notify();
      this.log.error({ node: this.node.name }, 'plexus: this node left the cluster; add it again to rejoin');
    });
  }

  peerNames(): readonly string[] {
    return [...this.#links.keys()];
  }

  /** The connected peers: a peer silent for `deadAfterMs` is disconnected, and so no longer listed. */
  liveConfirmations(): readonly LiveConfirmation[] {
    if (!this.#lifecycle.started) return [];
    const self = this.node.name;
    const out: LiveConfirmation[] = [];
    for (const l of this.#links.values()) if (l.connected) out.push({ name: l.name, ownApplied: l.appliedThrough.get(self) ?? 0 });
    return out;
  }

  whenReady(timeoutMs: number): Promise<PeersReady> {
    const self = this.#node?.name;
    const peers = (this.#members ?? []).filter((m) => m.state === 'active' && m.name !== self).map((m) => m.name);
    return whenPeersConnected(this, { timeoutMs, peers });
  }

  waitForReplicas(seq: number, count: number, timeoutMs: number): Promise<number> {
    const confirmed = () => {
      let n = 0;
      for (const l of this.#links.values()) if (l.ackedSeq >= seq) n++;
      return n;
    };
    return this.#waiters.wait(confirmed, count, timeoutMs, () => this.#lifecycle.started);
  }

  /** @internal */
  attach(link: Link, socket: TLSSocket, certName: string, handshakeTimer: NodeJS.Timeout): void {
    const old = link.session;
    if (old) {
      this.log.info({ peer: link.name }, 'plexus: replacing an older connection');
      old.close('replaced');
    }
    if (link.dropped) return void socket.destroy();
    link.certName = certName;
    link.fingerprint = socket.getPeerCertificate().fingerprint256 ?? '';
    const session = new Session(link, socket, this, handshakeTimer);
    link.session = session;
    session.open();
  }

  /** @internal */
  opened(session: Session): void {
    this.subscribe(session);
    this.#resubscribeAll(session.link);
  }

  /** @internal Tells the peer what this node wants from it (see {@link subscriptionFor}). */
  subscribe(session: Session): void {
    const node = this.node;
    const link = session.link;
    const others: string[] = [];
    for (const other of this.#links.values()) if (other !== link && other.connected) others.push(other.name);
    const sub = subscriptionFor(node.name, node.cursors(), others, session.peerHello?.cursors[node.name] ?? 0);
    if (sub.recoverUntil > 0) {
      const own = sub.cursors[node.name] ?? 0;
      this.log.warn({ peer: link.name, own, theirs: sub.recoverUntil }, 'plexus: the peer holds writes of this node that this node lacks; recovering them');
    }
    session.send(encodeControl(Frame.subscribe, sub));
  }

  /** @internal */
  closed(session: Session, why: string, wasConnected: boolean): void {
    const link = session.link;
    link.session = undefined;
    if (wasConnected && this.running) {
      link.counters.disconnects++;
      this.log.info({ peer: link.name, why }, 'plexus: peer disconnected');
      this.#resubscribeAll();
    }
    this.#waiters.notify();
    if (link.dialer) this.#mesh.scheduleReconnect(link);
  }

  /** @internal */
  confirmed(): void {
    this.#waiters.notify();
  }

  /** Connectivity changed: every other link's subscription (who relays what) changes too. */
  #resubscribeAll(except?: Link): void {
    if (!this.running) return;
    for (const l of this.#links.values()) {
      const session = l.session;
      if (l !== except && session?.connected) this.subscribe(session);
    }
  }
}

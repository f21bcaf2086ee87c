import type { Store } from '@replica/storage';
import type { ReplicationTransport } from '@replica/transport-api';
import type { Membership } from './membership.js';

export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/** How long readiness waits for every known peer to connect before it goes by those that did. */
export const READY_PEER_WAIT_MS = 5000;

/**
 * Whether the node has caught up with its peers: it applied, of every origin, at least
 * what its connected peers held when they connected (their {@link PeerStatus.holds}).
 * For the first `peerWaitMs` it also waits for every peer it knows to connect: a peer
 * that connects late may hold more (of this node's own writes too, after a restore from
 * a backup), and a node that reported ready too early would take writes that reuse the
 * numbers of its own lost ones. After that it goes by the peers that are connected, so a
 * member that is down does not keep the others unready.
 * Once caught up it stays ready for the life of the process (a peer that goes away later
 * does not make its data older); a node with no peer is ready once its transport runs.
 * Not ready while the store or transport is down, while the store refuses writes (its
 * storage state says why: a full disk, free space below the floor, failed storage), or
 * once this node was removed.
 */
export class ReadinessCheck {
  #caughtUp = false;
  readonly #since = Date.now();

  constructor(
    private readonly store: Store,
    private readonly transport: ReplicationTransport | undefined,
    private readonly membership: Membership,
    private readonly peerWaitMs = READY_PEER_WAIT_MS,
  ) {}

  check(): Readiness {
    const { store, transport } = this;
    if (store.closed) return { ready: false, reason: 'the store is closed' };
    // A node that refuses writes must not get them: full disk, below the free-space floor, failed storage.
    const storage = store.storage();
    if (storage.reason !== undefined) return { ready: false, reason: storage.reason };
    if (!transport) return { ready: true };
    if (transport.state !== 'started') return { ready: false, reason: 'replication transport not started' };
    if (this.membership.selfRemoved) return { ready: false, reason: 'this node was removed from the cluster' };
    if (this.#caughtUp) return { ready: true };
    const peers = transport.status().peers;
    if (peers.length === 0) return this.#ready();
    const target = new Map<string, number>();
    let connected = 0;
    for (const p of peers) {
      if (!p.connected || !p.holds) continue;
      connected++;
      for (const [origin, n] of Object.entries(p.holds)) if (n > (target.get(origin) ?? 0)) target.set(origin, n);
    }
    if (connected === 0) return { ready: false, reason: `no peer connected yet (${peers.map((p) => p.name).join(', ')})` };
    const waiting = peers.filter((p) => !p.connected || !p.holds).map((p) => p.name);
    if (waiting.length > 0 && Date.now() - this.#since < this.peerWaitMs) return { ready: false, reason: `waiting up to ${this.peerWaitMs} ms for every peer to connect: ${waiting.join(', ')}` };
    const cursors = store.cursors();
    const behind: string[] = [];
    for (const [origin, n] of target) {
      const have = cursors[origin] ?? 0;
      if (have < n) behind.push(`${origin} ${have}/${n}`);
    }
    if (behind.length > 0) return { ready: false, reason: `catching up with its peers: ${behind.join(', ')}` };
    return this.#ready();
  }

  #ready(): Readiness {
    this.#caughtUp = true;
    return { ready: true };
  }
}

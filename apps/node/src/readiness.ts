import type { Store } from '@replica/storage';
import type { ReplicationTransport } from '@replica/transport-api';
import type { Membership } from './membership.js';

export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/**
 * Whether the node has caught up with its peers: it applied, of every origin, at least
 * what its connected peers held when they connected (their {@link PeerStatus.holds}).
 * Once caught up it stays ready for the life of the process (a peer that goes away later
 * does not make its data older); a node with no peer is ready once its transport runs.
 * Not ready while the store or transport is down, or once this node was removed.
 */
export class ReadinessCheck {
  #caughtUp = false;

  constructor(
    private readonly store: Store,
    private readonly transport: ReplicationTransport | undefined,
    private readonly membership: Membership,
  ) {}

  check(): Readiness {
    const { store, transport } = this;
    if (store.closed) return { ready: false, reason: 'the store is closed' };
    if (store.failure !== undefined) return { ready: false, reason: 'the store failed to commit and refuses writes; restart the node' };
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

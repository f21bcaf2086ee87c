import { Backoff, peerLag, type Cursors, type LocalNode, type PeerStatus } from '@replica/transport-api';
import type { PlexusConfig, PlexusPeer } from './options.js';
import type { Receiver } from './receiver.js';
import type { Session } from './session.js';

/** Per-peer totals; they only grow while the transport runs. */
export type LinkCounters = Record<
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
  | 'resyncsReceived'
  | 'holds',
  number
>;

/**
 * What this node keeps about one configured peer for as long as the transport runs,
 * across connections: where it is, which side dials, what it confirmed, its counters
 * and its reconnect backoff. It has at most one {@link Session} at a time.
 */
export class Link {
  /**
   * The live connection, from attach until it closes. A session is detached (closed)
   * before the next one is attached, so this is never a stale one.
   */
  session: Session | undefined;
  /** The receiver applying this peer's frames now: one at a time, also across connections. */
  applying: Receiver | undefined;
  /** CN of the peer's certificate on the last connection ('' before any). */
  certName = '';
  /** SHA-256 fingerprint of the peer's certificate on the last connection ('' before any). */
  fingerprint = '';
  /** The peer's cursors as its last hello gave them: what it held when it connected. */
  holds: Cursors | undefined;
  /** No longer a peer (removed from the cluster): never dialled or attached again. */
  dropped = false;
  /** See {@link PeerStatus.ackedSeq}. */
  ackedSeq = 0;
  /** See {@link PeerStatus.appliedThrough}. */
  readonly appliedThrough = new Map<string, number>();
  readonly counters: LinkCounters = {
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
    holds: 0,
  };
  /** Highest in-flight bytes since start (a gauge: a high-water mark, not a total). */
  inFlightBytesPeak = 0;
  everConnected = false;
  readonly backoff: Backoff;
  reconnectTimer: NodeJS.Timeout | undefined;

  constructor(
    /** Where the peer is reached; the member list may move it. */
    public peer: PlexusPeer,
    /** This node dials the peer (its name sorts first); the peer never dials it. */
    readonly dialer: boolean,
    config: Pick<PlexusConfig, 'reconnectMinMs' | 'reconnectMaxMs'>,
  ) {
    this.backoff = new Backoff(config.reconnectMinMs, config.reconnectMaxMs);
  }

  get name(): string {
    return this.peer.name;
  }

  /** Hello exchanged on the live connection: replication runs. */
  get connected(): boolean {
    return this.session?.connected ?? false;
  }

  /** New entries in the log: the sender, if any, looks again. */
  wake(): void {
    this.session?.sender.wake();
  }

  /** The peer announced its cursors (it subscribed with them): it applied at least that much of each origin. */
  announced(cursors: Cursors): void {
    for (const [origin, n] of Object.entries(cursors)) {
      if (n > (this.appliedThrough.get(origin) ?? 0)) this.appliedThrough.set(origin, n);
    }
  }

  /**
   * The peer holds `holds` of `mine`'s writes. If that is fewer than it once confirmed, it
   * lost data and its old confirmations no longer count: returns what it had confirmed.
   */
  forgetIfLost(mine: string, holds: number): number | undefined {
    const confirmed = this.appliedThrough.get(mine) ?? 0;
    if (holds >= confirmed) return undefined;
    this.ackedSeq = 0;
    this.appliedThrough.clear();
    return confirmed;
  }

  /** The peer's replication state; `node` is undefined once the transport stopped. */
  status(node: LocalNode | undefined): PeerStatus {
    const session = this.session;
    return {
      name: this.name,
      connected: this.connected,
      ackedSeq: this.ackedSeq,
      ...peerLag(node, this.ackedSeq),
      counters: { ...this.counters },
      gauges: { inFlightBytes: session?.sender.inFlightBytes ?? 0, inFlightBytesPeak: this.inFlightBytesPeak, queuedBytes: session?.socket.writableLength ?? 0 },
      info: { certificate: this.certName, fingerprint: this.fingerprint, address: `${this.peer.host}:${this.peer.port}`, role: this.dialer ? 'dials' : 'accepts' },
      appliedThrough: Object.fromEntries(this.appliedThrough),
      ...(this.holds ? { holds: { ...this.holds } } : {}),
    };
  }
}

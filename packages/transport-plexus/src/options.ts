import { withDefaults, type Logger } from '@replica/transport-api';

/** The transport's `kind`, also the `kind` of the errors it raises. */
export const PLEXUS = 'plexus';

/** One node of the cluster, as this node reaches it. */
export interface PlexusPeer {
  /** The node's name: the CN its certificate must carry. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** Settings of a plexus transport. */
export interface PlexusInit {
  /** Where this node accepts peer connections. */
  readonly listen: { readonly host: string; readonly port: number };
  /** Every node of the cluster; this node's own entry may be listed and is skipped. */
  readonly peers: readonly PlexusPeer[];
  /** PEM: the cluster CA, this node's certificate (CN = node name) and its key. */
  readonly tls: { readonly ca: string | Buffer; readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Most entries per batch frame. Default {@link PLEXUS_DEFAULTS}.batchMaxEntries. */
  readonly batchMaxEntries?: number;
  /** Target size of a batch frame; larger batches are split. Default {@link PLEXUS_DEFAULTS}.batchMaxBytes. */
  readonly batchMaxBytes?: number;
  /** Largest frame accepted from a peer; larger closes the connection. Default {@link PLEXUS_DEFAULTS}.maxFrameBytes. */
  readonly maxFrameBytes?: number;
  /** Unacknowledged batch frames per peer before the sender waits. Default {@link PLEXUS_DEFAULTS}.maxInFlightFrames. */
  readonly maxInFlightFrames?: number;
  /** Unacknowledged batch bytes per peer before the sender waits. Default {@link PLEXUS_DEFAULTS}.maxInFlightBytes. */
  readonly maxInFlightBytes?: number;
  /** Ping interval. Default {@link PLEXUS_DEFAULTS}.heartbeatMs. */
  readonly heartbeatMs?: number;
  /** A peer silent this long is disconnected (also the handshake timeout). Default {@link PLEXUS_DEFAULTS}.deadAfterMs. */
  readonly deadAfterMs?: number;
  /** Reconnect backoff: first delay and cap (with jitter). Defaults {@link PLEXUS_DEFAULTS}.reconnectMinMs and {@link PLEXUS_DEFAULTS}.reconnectMaxMs. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** Records per snapshot frame in a merge resync. Default {@link PLEXUS_DEFAULTS}.snapshotBatch. */
  readonly snapshotBatch?: number;
  /**
   * How long the connection of a removed member stays open without a batch from it, so
   * that the writes it acknowledged before it learned of its removal reach this node;
   * as long as its batches keep arriving it stays open, up to
   * {@link REMOVAL_DRAIN_MAX_FACTOR} times this. The removed node waits for its peers'
   * confirmations the same way. Default {@link PLEXUS_DEFAULTS}.removalDrainMs.
   */
  readonly removalDrainMs?: number;
}

export interface PlexusComponents {
  /** Default `warnLogger`: warnings and errors to stderr, one line each. `silentLogger` silences the transport. */
  readonly logger?: Logger;
}

/** The defaults of {@link PlexusInit}: one named value per setting. */
export const PLEXUS_DEFAULTS = Object.freeze({
  batchMaxEntries: 1000,
  batchMaxBytes: 1024 * 1024,
  maxFrameBytes: 32 * 1024 * 1024,
  maxInFlightFrames: 32,
  maxInFlightBytes: 8 * 1024 * 1024,
  heartbeatMs: 1000,
  deadAfterMs: 4000,
  reconnectMinMs: 100,
  reconnectMaxMs: 5000,
  snapshotBatch: 500,
  removalDrainMs: 5000,
});

/**
 * A removed member's drain ends at the latest after this many `removalDrainMs`, even if
 * its writes keep coming (a node that never learns of its removal must not hold a
 * connection forever).
 */
export const REMOVAL_DRAIN_MAX_FACTOR = 24;

/** {@link PlexusInit} with every default filled in; frozen. */
export type PlexusConfig = Readonly<Required<PlexusInit>>;

/** Fills in the defaults once, at construction. */
export function resolveConfig(init: PlexusInit): PlexusConfig {
  return withDefaults(init, PLEXUS_DEFAULTS);
}

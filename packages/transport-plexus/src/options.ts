import type { Logger } from '@replica/transport-api';

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
  /** Most entries per batch frame. Default {@link DEFAULT_BATCH_MAX_ENTRIES}. */
  readonly batchMaxEntries?: number;
  /** Target size of a batch frame; larger batches are split. Default {@link DEFAULT_BATCH_MAX_BYTES}. */
  readonly batchMaxBytes?: number;
  /** Largest frame accepted from a peer; larger closes the connection. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  readonly maxFrameBytes?: number;
  /** Unacknowledged batch frames per peer before the sender waits. Default {@link DEFAULT_MAX_IN_FLIGHT_FRAMES}. */
  readonly maxInFlightFrames?: number;
  /** Unacknowledged batch bytes per peer before the sender waits. Default {@link DEFAULT_MAX_IN_FLIGHT_BYTES}. */
  readonly maxInFlightBytes?: number;
  /** Ping interval. Default {@link DEFAULT_HEARTBEAT_MS}. */
  readonly heartbeatMs?: number;
  /** A peer silent this long is disconnected (also the handshake timeout). Default {@link DEFAULT_DEAD_AFTER_MS}. */
  readonly deadAfterMs?: number;
  /** Reconnect backoff: first delay and cap (with jitter). Defaults {@link DEFAULT_RECONNECT_MIN_MS} and {@link DEFAULT_RECONNECT_MAX_MS}. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** Records per snapshot frame in a merge resync. Default {@link DEFAULT_SNAPSHOT_BATCH}. */
  readonly snapshotBatch?: number;
}

export interface PlexusComponents {
  readonly logger?: Logger;
}

export const DEFAULT_BATCH_MAX_ENTRIES = 1000;
export const DEFAULT_BATCH_MAX_BYTES = 1024 * 1024;
export const DEFAULT_MAX_FRAME_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_IN_FLIGHT_FRAMES = 32;
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_DEAD_AFTER_MS = 4000;
export const DEFAULT_RECONNECT_MIN_MS = 100;
export const DEFAULT_RECONNECT_MAX_MS = 5000;
export const DEFAULT_SNAPSHOT_BATCH = 500;

/** {@link PlexusInit} with every default filled in; frozen. */
export type PlexusConfig = Readonly<Required<PlexusInit>>;

/** Fills in the defaults once, at construction. */
export function resolveConfig(init: PlexusInit): PlexusConfig {
  return Object.freeze({
    listen: init.listen,
    peers: init.peers,
    tls: init.tls,
    batchMaxEntries: init.batchMaxEntries ?? DEFAULT_BATCH_MAX_ENTRIES,
    batchMaxBytes: init.batchMaxBytes ?? DEFAULT_BATCH_MAX_BYTES,
    maxFrameBytes: init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxInFlightFrames: init.maxInFlightFrames ?? DEFAULT_MAX_IN_FLIGHT_FRAMES,
    maxInFlightBytes: init.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES,
    heartbeatMs: init.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    deadAfterMs: init.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS,
    reconnectMinMs: init.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS,
    reconnectMaxMs: init.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS,
    snapshotBatch: init.snapshotBatch ?? DEFAULT_SNAPSHOT_BATCH,
  });
}

/**
 * Every error Replica raises on purpose carries a stable `code`. The list of codes
 * lives in {@link errorCodes} and in docs/errors.md; a test keeps the two in step.
 */
export abstract class ReplicaError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
  override get name(): string {
    return this.constructor.name;
  }
}

/** A transport was started twice, used after stop() or before start(), or could not start (e.g. no broker answered). */
export class TransportStateError extends ReplicaError {
  readonly code = 'REPLICA_ERR_TRANSPORT_STATE';
  constructor(readonly transport: string, readonly state: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A peer was refused: bad certificate, unknown node name, wrong cluster. */
export class PeerRejectedError extends ReplicaError {
  readonly code = 'REPLICA_ERR_PEER_REJECTED';
  constructor(readonly peer: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`peer ${peer} rejected: ${reason}`, options);
  }
}

/** A frame or batch could not be decoded, or holds entries of the wrong shape. */
export class MalformedFrameError extends ReplicaError {
  readonly code = 'REPLICA_ERR_FRAME_MALFORMED';
  constructor(readonly reason: string, options?: { cause?: unknown }) {
    super(`malformed frame: ${reason}`, options);
  }
}

/** A frame is larger than the configured limit. */
export class FrameTooLargeError extends ReplicaError {
  readonly code = 'REPLICA_ERR_FRAME_TOO_LARGE';
  constructor(readonly size: number, readonly limit: number) {
    super(`frame of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** The store was used after close(). */
export class StoreClosedError extends ReplicaError {
  readonly code = 'REPLICA_ERR_STORE_CLOSED';
  constructor() {
    super('the store is closed');
  }
}

/** A table name does not match ^[A-Za-z][A-Za-z0-9_]{0,63}$, or is reserved. */
export class InvalidTableError extends ReplicaError {
  readonly code = 'REPLICA_ERR_TABLE_INVALID';
  constructor(
    readonly table: string,
    readonly reason = 'use a letter, then up to 63 letters, digits or _',
  ) {
    super(`invalid table name ${JSON.stringify(table.slice(0, 80))}: ${reason}`);
  }
}

/** A table has never been written on this node. */
export class TableNotFoundError extends ReplicaError {
  readonly code = 'REPLICA_ERR_TABLE_NOT_FOUND';
  constructor(readonly table: string) {
    super(`table ${table} does not exist`);
  }
}

/** A record is not a JSON object with a valid string id, or breaks a size/depth limit. */
export class InvalidRecordError extends ReplicaError {
  readonly code = 'REPLICA_ERR_RECORD_INVALID';
  constructor(readonly reason: string) {
    super(`invalid record: ${reason}`);
  }
}

/** An insert named an id that already holds a live record. */
export class RecordExistsError extends ReplicaError {
  readonly code = 'REPLICA_ERR_RECORD_EXISTS';
  constructor(readonly table: string, readonly id: string) {
    super(`record ${table}/${id} already exists`);
  }
}

/** No live record with this id. */
export class RecordNotFoundError extends ReplicaError {
  readonly code = 'REPLICA_ERR_RECORD_NOT_FOUND';
  constructor(readonly table: string, readonly id: string) {
    super(`record ${table}/${id} not found`);
  }
}

/** Why a store refuses writes for lack of space: below its free-space floor, or a commit that found no space. */
export type StorageFullReason = 'lowSpace' | 'noSpace';

/**
 * A write was refused for lack of space, and nothing of it was written. `lowSpace`: free
 * space on the data directory's filesystem is below the node's floor (`MIN_FREE_BYTES`),
 * so local writes are refused while replication goes on; `noSpace`: a commit failed for
 * lack of space (ENOSPC, EDQUOT, a full LMDB map), so every write is refused until a
 * commit is possible again, which the store finds out by itself. Reads keep working.
 */
export class StorageFullError extends ReplicaError {
  readonly code = 'REPLICA_ERR_STORAGE_FULL';
  constructor(
    readonly reason: StorageFullReason,
    /** Free bytes on the data directory's filesystem when last measured (undefined when it cannot be measured). */
    readonly freeBytes: number | undefined,
    /** The floor below which local writes are refused (0: none). */
    readonly minFreeBytes: number,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(
      options?.detail !== undefined
        ? `storage full: ${options.detail}`
        : reason === 'lowSpace'
          ? `storage nearly full: ${freeBytes ?? '?'} bytes free on the data directory's filesystem, below the floor of ${minFreeBytes} (MIN_FREE_BYTES); local writes are refused, reads and replication go on`
          : `storage full: a commit found no space on the data directory's filesystem; writes are refused until space returns, reads go on`,
      options?.cause !== undefined ? { cause: options.cause } : undefined,
    );
  }
}

/**
 * A commit failed for a reason other than lack of space (an I/O error, a damaged
 * environment). The store refuses every write until it is reopened (a restart); reads
 * of what committed before keep working. `cause` is the storage engine's error.
 */
export class StorageFailedError extends ReplicaError {
  readonly code = 'REPLICA_ERR_STORAGE_FAILED';
  constructor(readonly detail: string, options?: { cause?: unknown }) {
    super(`storage failed: ${detail}; writes are refused until a retried commit goes through (or the node restarts), reads go on`, options);
  }
}

/** Configuration is invalid; `problems` lists every problem found at once. */
export class ConfigError extends ReplicaError {
  readonly code = 'REPLICA_ERR_CONFIG_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** The error classes of this package, by code. */
export const errorClasses = {
  REPLICA_ERR_TRANSPORT_STATE: TransportStateError,
  REPLICA_ERR_PEER_REJECTED: PeerRejectedError,
  REPLICA_ERR_FRAME_MALFORMED: MalformedFrameError,
  REPLICA_ERR_FRAME_TOO_LARGE: FrameTooLargeError,
  REPLICA_ERR_STORE_CLOSED: StoreClosedError,
  REPLICA_ERR_TABLE_INVALID: InvalidTableError,
  REPLICA_ERR_TABLE_NOT_FOUND: TableNotFoundError,
  REPLICA_ERR_RECORD_INVALID: InvalidRecordError,
  REPLICA_ERR_RECORD_EXISTS: RecordExistsError,
  REPLICA_ERR_RECORD_NOT_FOUND: RecordNotFoundError,
  REPLICA_ERR_CONFIG_INVALID: ConfigError,
  REPLICA_ERR_STORAGE_FULL: StorageFullError,
  REPLICA_ERR_STORAGE_FAILED: StorageFailedError,
} as const;

export type ErrorCode = keyof typeof errorClasses;

export function isReplicaError(err: unknown): err is ReplicaError {
  return err instanceof ReplicaError;
}

/** The store refused a write and will not take any until it is writable again ({@link LocalNode.whenWritable}). */
export function isStorageRefusal(err: unknown): err is StorageFullError | StorageFailedError {
  return err instanceof StorageFullError || err instanceof StorageFailedError;
}

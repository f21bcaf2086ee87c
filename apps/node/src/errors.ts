import { ReplicaError, errorClasses, type ErrorCode } from '@replica/transport-api';

/** The request needs `Authorization: Bearer <API_TOKEN>`. */
export class UnauthorizedError extends ReplicaError {
  readonly code = 'REPLICA_ERR_AUTH_REQUIRED';
  constructor() {
    super('missing or wrong bearer token');
  }
}

/** The request body is not valid JSON (or is empty where JSON is required). */
export class InvalidJsonError extends ReplicaError {
  readonly code = 'REPLICA_ERR_BODY_INVALID_JSON';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`request body is not valid JSON: ${detail}`, options);
  }
}

/** The request body is larger than BODY_LIMIT. */
export class BodyTooLargeError extends ReplicaError {
  readonly code = 'REPLICA_ERR_BODY_TOO_LARGE';
  constructor(readonly limit: number) {
    super(`request body is larger than ${limit} bytes`);
  }
}

/** The request body is not `application/json`. */
export class UnsupportedMediaTypeError extends ReplicaError {
  readonly code = 'REPLICA_ERR_BODY_MEDIA_TYPE';
  constructor(readonly contentType: string) {
    super(`unsupported content type ${JSON.stringify(contentType)}: send application/json`);
  }
}

/** No route matches the method and path. */
export class RouteNotFoundError extends ReplicaError {
  readonly code = 'REPLICA_ERR_ROUTE_NOT_FOUND';
  constructor(readonly method: string, readonly url: string) {
    super(`no route for ${method} ${url}`);
  }
}

/** `X-Replicate-Confirm` is not a non-negative integer, or asks for more peers than exist. */
export class InvalidConfirmError extends ReplicaError {
  readonly code = 'REPLICA_ERR_CONFIRM_INVALID';
  constructor(readonly reason: string) {
    super(`X-Replicate-Confirm: ${reason}`);
  }
}

/** The write committed locally, but fewer peers than asked confirmed it in time. */
export class ConfirmTimeoutError extends ReplicaError {
  readonly code = 'REPLICA_ERR_CONFIRM_TIMEOUT';
  constructor(readonly confirmed: number, readonly required: number, readonly timeoutMs: number) {
    super(`write committed locally, but only ${confirmed} of ${required} peers confirmed it within ${timeoutMs} ms`);
  }
}

/** The write committed locally, but the broker did not acknowledge it in time (nats per-write). */
export class ShipTimeoutError extends ReplicaError {
  readonly code = 'REPLICA_ERR_SHIP_TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`write committed locally, but the broker did not acknowledge it within ${timeoutMs} ms; it is published once the broker is back`);
  }
}

/** The node is starting or shutting down. */
export class UnavailableError extends ReplicaError {
  readonly code = 'REPLICA_ERR_UNAVAILABLE';
  constructor(reason: string) {
    super(`node unavailable: ${reason}`);
  }
}

/** The node has not caught up with its peers yet (or cannot replicate): `/ready` says why. */
export class NotReadyError extends ReplicaError {
  readonly code = 'REPLICA_ERR_NOT_READY';
  constructor(readonly reason: string) {
    super(`node not ready: ${reason}`);
  }
}

/**
 * Flow control (`MAX_REPLICATION_LAG_MS`) refused a local write, before writing anything: a
 * live peer has not confirmed this node's writes of the last `lagMs`, past the hard limit
 * (`reason` `hardLimit`), or the write waited `limitMs` for it to come back within the
 * target (`waitedTooLong`). Answered 503 with `Retry-After: retryAfterSeconds`.
 */
export class ReplicationLagError extends ReplicaError {
  readonly code = 'REPLICA_ERR_REPLICATION_LAG';
  constructor(
    readonly reason: 'hardLimit' | 'waitedTooLong',
    readonly peer: string,
    readonly lagMs: number,
    readonly limitMs: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      reason === 'hardLimit'
        ? `write refused by flow control: peer ${peer} has not confirmed this node's writes of the last ${Math.round(lagMs)} ms, over the hard limit of ${limitMs} ms; nothing was written, retry after ${retryAfterSeconds} s`
        : `write refused by flow control: it waited ${limitMs} ms for peer ${peer} to confirm this node's writes (still ${Math.round(lagMs)} ms behind); nothing was written, retry after ${retryAfterSeconds} s`,
    );
  }
}

/** The admin routes are off: ADMIN_TOKEN is not set. */
export class AdminDisabledError extends ReplicaError {
  readonly code = 'REPLICA_ERR_ADMIN_DISABLED';
  constructor() {
    super('the admin API is off on this node: set ADMIN_TOKEN to turn it on');
  }
}

/** An admin route needs `Authorization: Bearer <ADMIN_TOKEN>`. */
export class AdminUnauthorizedError extends ReplicaError {
  readonly code = 'REPLICA_ERR_ADMIN_AUTH_REQUIRED';
  constructor() {
    super('missing or wrong admin bearer token');
  }
}

/** A member change names no valid node or address, or its body is not the expected object. */
export class InvalidMemberError extends ReplicaError {
  readonly code = 'REPLICA_ERR_MEMBER_INVALID';
  constructor(readonly reason: string) {
    super(`invalid member: ${reason}`);
  }
}

/** Adding a node that is a member already. */
export class MemberExistsError extends ReplicaError {
  readonly code = 'REPLICA_ERR_MEMBER_EXISTS';
  constructor(readonly member: string) {
    super(`${member} is a member already`);
  }
}

/** Removing (or reading) a node that is not a member. */
export class MemberNotFoundError extends ReplicaError {
  readonly code = 'REPLICA_ERR_MEMBER_NOT_FOUND';
  constructor(readonly member: string) {
    super(`${member} is not a member of the cluster`);
  }
}

/** A removal that would leave the cluster without this node or without members. */
export class MemberRemovalRefusedError extends ReplicaError {
  readonly code = 'REPLICA_ERR_MEMBER_REMOVAL_REFUSED';
  constructor(readonly member: string, readonly reason: string) {
    super(`cannot remove ${member}: ${reason}`);
  }
}

/** This node replicates with nobody (REPLICATION_TRANSPORT=none): it has no cluster to change. */
export class MembershipUnavailableError extends ReplicaError {
  readonly code = 'REPLICA_ERR_MEMBERSHIP_UNAVAILABLE';
  constructor() {
    super('this node runs without replication (REPLICATION_TRANSPORT=none): it has no cluster members to change');
  }
}

/** Joining with a certificate request is off on this node: it has no TLS_CA_KEY (or does not run plexus). */
export class JoinDisabledError extends ReplicaError {
  readonly code = 'REPLICA_ERR_JOIN_DISABLED';
  constructor() {
    super('joining with a certificate request is off on this node: it needs REPLICATION_TRANSPORT=plexus and TLS_CA_KEY (or sign with replica-certs sign --csr)');
  }
}

/** A join token that this node did not issue, that expired, or that was used already. */
export class JoinTokenInvalidError extends ReplicaError {
  readonly code = 'REPLICA_ERR_JOIN_TOKEN_INVALID';
  constructor() {
    super('the join token is unknown to this node, expired, or used already: ask for a new one (POST /cluster/join-tokens on the node that signs)');
  }
}

/** An unexpected failure; the log has the details. */
export class InternalError extends ReplicaError {
  readonly code = 'REPLICA_ERR_INTERNAL';
  constructor(options?: { cause?: unknown }) {
    super('internal error', options);
  }
}

export const appErrorClasses = {
  REPLICA_ERR_AUTH_REQUIRED: UnauthorizedError,
  REPLICA_ERR_BODY_INVALID_JSON: InvalidJsonError,
  REPLICA_ERR_BODY_TOO_LARGE: BodyTooLargeError,
  REPLICA_ERR_BODY_MEDIA_TYPE: UnsupportedMediaTypeError,
  REPLICA_ERR_ROUTE_NOT_FOUND: RouteNotFoundError,
  REPLICA_ERR_CONFIRM_INVALID: InvalidConfirmError,
  REPLICA_ERR_CONFIRM_TIMEOUT: ConfirmTimeoutError,
  REPLICA_ERR_SHIP_TIMEOUT: ShipTimeoutError,
  REPLICA_ERR_UNAVAILABLE: UnavailableError,
  REPLICA_ERR_NOT_READY: NotReadyError,
  REPLICA_ERR_REPLICATION_LAG: ReplicationLagError,
  REPLICA_ERR_ADMIN_DISABLED: AdminDisabledError,
  REPLICA_ERR_ADMIN_AUTH_REQUIRED: AdminUnauthorizedError,
  REPLICA_ERR_MEMBER_INVALID: InvalidMemberError,
  REPLICA_ERR_MEMBER_EXISTS: MemberExistsError,
  REPLICA_ERR_MEMBER_NOT_FOUND: MemberNotFoundError,
  REPLICA_ERR_MEMBER_REMOVAL_REFUSED: MemberRemovalRefusedError,
  REPLICA_ERR_MEMBERSHIP_UNAVAILABLE: MembershipUnavailableError,
  REPLICA_ERR_JOIN_DISABLED: JoinDisabledError,
  REPLICA_ERR_JOIN_TOKEN_INVALID: JoinTokenInvalidError,
  REPLICA_ERR_INTERNAL: InternalError,
} as const;

export type AppErrorCode = keyof typeof appErrorClasses;

/** The HTTP status of every error code, in one place. */
export const httpStatusOf: Readonly<Record<ErrorCode | AppErrorCode, number>> = {
  REPLICA_ERR_TRANSPORT_STATE: 500,
  REPLICA_ERR_PEER_REJECTED: 500,
  REPLICA_ERR_FRAME_MALFORMED: 500,
  REPLICA_ERR_FRAME_TOO_LARGE: 500,
  REPLICA_ERR_STORE_CLOSED: 503,
  REPLICA_ERR_TABLE_INVALID: 400,
  REPLICA_ERR_TABLE_NOT_FOUND: 404,
  REPLICA_ERR_RECORD_INVALID: 400,
  REPLICA_ERR_RECORD_EXISTS: 409,
  REPLICA_ERR_RECORD_NOT_FOUND: 404,
  REPLICA_ERR_CONFIG_INVALID: 500,
  REPLICA_ERR_STORAGE_FULL: 507,
  REPLICA_ERR_STORAGE_FAILED: 503,
  REPLICA_ERR_AUTH_REQUIRED: 401,
  REPLICA_ERR_BODY_INVALID_JSON: 400,
  REPLICA_ERR_BODY_TOO_LARGE: 413,
  REPLICA_ERR_BODY_MEDIA_TYPE: 415,
  REPLICA_ERR_ROUTE_NOT_FOUND: 404,
  REPLICA_ERR_CONFIRM_INVALID: 400,
  REPLICA_ERR_CONFIRM_TIMEOUT: 504,
  REPLICA_ERR_SHIP_TIMEOUT: 504,
  REPLICA_ERR_UNAVAILABLE: 503,
  REPLICA_ERR_NOT_READY: 503,
  REPLICA_ERR_REPLICATION_LAG: 503,
  REPLICA_ERR_ADMIN_DISABLED: 403,
  REPLICA_ERR_ADMIN_AUTH_REQUIRED: 401,
  REPLICA_ERR_MEMBER_INVALID: 400,
  REPLICA_ERR_MEMBER_EXISTS: 409,
  REPLICA_ERR_MEMBER_NOT_FOUND: 404,
  REPLICA_ERR_MEMBER_REMOVAL_REFUSED: 409,
  REPLICA_ERR_MEMBERSHIP_UNAVAILABLE: 409,
  REPLICA_ERR_JOIN_DISABLED: 403,
  REPLICA_ERR_JOIN_TOKEN_INVALID: 401,
  REPLICA_ERR_INTERNAL: 500,
};

/** Every code Replica can raise: the library's and the app's. */
export const allErrorCodes = [...Object.keys(errorClasses), ...Object.keys(appErrorClasses)].sort();

/** Turns any thrown value into a ReplicaError with a known HTTP status. */
export function toReplicaError(err: unknown, bodyLimit: number, contentType?: string): ReplicaError {
  if (err instanceof ReplicaError && err.code in httpStatusOf) return err;
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new InvalidJsonError((err as Error).message, { cause: err });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BodyTooLargeError(bodyLimit);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new InvalidJsonError('body length does not match Content-Length', { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(contentType ?? '');
    default:
      break;
  }
  if (err instanceof SyntaxError) return new InvalidJsonError(err.message, { cause: err });
  return new InternalError({ cause: err });
}

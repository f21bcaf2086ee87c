/** Table names: a letter, then up to 63 letters, digits or `_`. */
export const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/**
 * System tables: `$` and a lower-case name. The store and the wire carry them like any
 * table; the REST table routes refuse them (they hold the node's own state, such as
 * the cluster's members).
 */
export const SYSTEM_TABLE_NAME = /^\$[a-z][a-z0-9_]{0,62}$/;

/** The replicated member list (see {@link Member}). */
export const MEMBERS_TABLE = '$members';

/** Node names: a letter or digit, then up to 63 letters, digits, `_` or `-`. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Longest record id, in UTF-8 bytes (LMDB keys are small). */
export const MAX_ID_BYTES = 512;

export function isTableName(s: unknown): s is string {
  return typeof s === 'string' && TABLE_NAME.test(s);
}

export function isSystemTableName(s: unknown): s is string {
  return typeof s === 'string' && SYSTEM_TABLE_NAME.test(s);
}

/** A name the store and the wire accept: a user table or a system table. */
export function isStoredTableName(s: unknown): s is string {
  return isTableName(s) || isSystemTableName(s);
}

export function isNodeName(s: unknown): s is string {
  return typeof s === 'string' && NODE_NAME.test(s);
}

export function isRecordId(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && Buffer.byteLength(s) <= MAX_ID_BYTES;
}

/**
 * `host:port` (an IPv6 host in brackets: `[::1]:9800`) as host and port, or undefined
 * when it is not one: an empty host, whitespace, or a port outside 1–65535.
 */
export function parseHostPort(s: unknown): { host: string; port: number } | undefined {
  if (typeof s !== 'string' || s.length > 300) return undefined;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]/@]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

/** Table names: a letter, then up to 63 letters, digits or `_`. */
export const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** Node names: a letter or digit, then up to 63 letters, digits, `_` or `-`. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Longest record id, in UTF-8 bytes (LMDB keys are small). */
export const MAX_ID_BYTES = 512;

export function isTableName(s: unknown): s is string {
  return typeof s === 'string' && TABLE_NAME.test(s);
}

export function isNodeName(s: unknown): s is string {
  return typeof s === 'string' && NODE_NAME.test(s);
}

export function isRecordId(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && Buffer.byteLength(s) <= MAX_ID_BYTES;
}

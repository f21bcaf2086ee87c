import { InvalidRecordError, InvalidTableError, isRecordId, isStoredTableName, type RecordValue } from '@replica/transport-api';

/*
 * What the store accepts: a record that passes these checks reads back exactly as it
 * was written. Writes are checked before they are staged, so a refused write leaves
 * nothing behind.
 */

/**
 * Throws {@link InvalidTableError} for a table name, or {@link InvalidRecordError} for
 * an id, that the store does not accept.
 */
export function validateKey(table: string, id: unknown): void {
  if (!isStoredTableName(table)) throw new InvalidTableError(String(table));
  if (!isRecordId(id)) throw new InvalidRecordError('id must be a non-empty string of at most 512 bytes');
}

/**
 * Throws {@link InvalidTableError} or {@link InvalidRecordError} unless `value` is a
 * storable record of `table`: a JSON object with a valid id, nested at most `maxDepth`
 * levels, that {@link unstorable} finds nothing wrong with.
 */
export function validate(table: string, value: RecordValue, maxDepth: number): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRecordError('a record must be a JSON object');
  }
  validateKey(table, value.id);
  const problem = unstorable(value, maxDepth, maxDepth);
  if (problem !== undefined) throw new InvalidRecordError(problem);
}

/** A lone UTF-16 surrogate: JSON can escape one (`"\ud800"`), but it is not Unicode text. */
export const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Why a record value would not read back as written, or undefined: nesting deeper than
 * `max` levels; a string or field name with a lone surrogate (UTF-8 — msgpack, LMDB
 * keys — cannot hold one: it comes back as U+FFFD, and two ids differing only there
 * would share a key); a number that is not finite (JSON answers Infinity as null).
 * One walk, bounded by `max`, so it never recurses deeper than the limit.
 */
export function unstorable(v: unknown, max: number, limit: number): string | undefined {
  if (typeof v === 'string') return LONE_SURROGATE.test(v) ? 'strings must be well-formed Unicode (no lone surrogates)' : undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : 'numbers must be finite';
  if (v === null || typeof v !== 'object') return undefined;
  if (max <= 0) return `nesting deeper than ${limit} levels`;
  if (Array.isArray(v)) {
    for (const child of v) {
      const p = unstorable(child, max - 1, limit);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  for (const [k, child] of Object.entries(v)) {
    if (LONE_SURROGATE.test(k)) return 'field names must be well-formed Unicode (no lone surrogates)';
    if (k === '__proto__') return 'field names must not be "__proto__" (it would read back as "__proto_")';
    const p = unstorable(child, max - 1, limit);
    if (p !== undefined) return p;
  }
  return undefined;
}

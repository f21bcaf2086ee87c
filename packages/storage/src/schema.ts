import type { Database, Key, RootDatabase } from 'lmdb';
import type { LogEntry, RecordValue, Version } from '@replica/transport-api';

/*
 * What the store keeps in LMDB: five named databases in one environment, their key
 * and value shapes, and the keys of the `meta` database. Changing any of this changes
 * the on-disk format: an existing store would no longer read back.
 */

/** How a record is kept in LMDB: its version and, unless it is a tombstone, its value. */
export interface StoredRecord {
  v: Version;
  d?: RecordValue;
}

/** A log entry as kept in LMDB, keyed by seq. */
export type StoredEntry = [
  origin: string,
  originSeq: number,
  table: string,
  id: string,
  version: Version,
  op: 0 | 1,
  value: RecordValue | null,
  /** When this node appended the entry (local wall clock, ms): retention and lag use it. */
  appendedMs: number,
];

/** The `head` meta value: the newest seq and the clock, as of the last commit. */
export interface Head {
  seq: number;
  clock: [number, number];
}

/** A table's stats as kept under its {@link tableKey}: live records and digest bytes. */
export interface StoredTableStats {
  count: number;
  digest: Uint8Array;
}

/** Key of the `records` database (see {@link recordKey}). */
export type RecordKey = [table: string, id: string];

/** Key of the `origin-index` database: an origin's entry by its originSeq, valued by local seq. */
export type IndexKey = [origin: string, originSeq: number];

/** Key of the `meta` database: {@link HEAD_KEY} or a `[prefix, name]` pair. */
export type MetaKey = string | [prefix: MetaPrefix, name: string];

/** The store's databases. Writes to them go through the store's write core only. */
export interface StoreDbs {
  /** Every record, tombstones included, by `[table, id]`. */
  readonly records: Database<StoredRecord, RecordKey>;
  /** The replication log by local seq, oldest first. */
  readonly log: Database<StoredEntry, number>;
  /** Local seq of every entry the log holds, by `[origin, originSeq]`. */
  readonly index: Database<number, IndexKey>;
  /** Head, cursors, table stats and adopted cursors (see the `*Key` helpers). */
  readonly meta: Database<unknown, MetaKey>;
  /**
   * One entry, {@link GUARD_KEY}, whose version counts the store's commits: every write
   * is conditional on it, so no commit goes through after one that failed (see the store).
   */
  readonly guard: Database<number, string>;
}

/** Read access to the store's databases, for code that must not write them. */
export type ReadOnlyDbs = { readonly [K in Exclude<keyof StoreDbs, 'guard'>]: Pick<StoreDbs[K], 'get' | 'getRange' | 'getKeys'> };

/** Opens (or creates) the store's databases in `env`. */
export function openDbs(env: RootDatabase): StoreDbs {
  return {
    records: env.openDB({ name: 'records' }),
    // Number keys in lmdb's ordered-binary encoding: safe up to 2^53, unlike 'uint32'.
    log: env.openDB({ name: 'log' }),
    index: env.openDB({ name: 'origin-index' }),
    meta: env.openDB({ name: 'meta' }),
    guard: env.openDB({ name: 'guard', useVersions: true }),
  };
}

/** The key of the commit counter in the `guard` database; its version is the number of the last commit. */
export const GUARD_KEY = 'commits';

/**
 * Records are keyed by `[table, id]`, an lmdb-js array key: ordered by table, then id,
 * and it reads back exactly as written whatever the id holds. (A single string
 * `table \u0000 id` does not: lmdb-js encodes a long string key like an array whose
 * elements are split at U+0000, so such keys came back as arrays.)
 */
export function recordKey(table: string, id: string): RecordKey {
  return [table, id];
}

/** The in-memory key of a record staged for commit (table names cannot hold U+0000). */
export function pendingKey(table: string, id: string): string {
  return `${table}\u0000${id}`;
}

/** The log entry a stored one stands for, at local `seq`. */
export function toEntry(seq: number, e: StoredEntry): LogEntry {
  const base = { seq, origin: e[0], originSeq: e[1], table: e[2], id: e[3], version: e[4] };
  return e[5] === 0 && e[6] ? { ...base, op: 'put', value: e[6] } : { ...base, op: 'delete' };
}

// ---------------------------------------------------------------- meta keys

/** Meta key of the {@link Head}, rewritten by every commit that appended or merged. */
export const HEAD_KEY = 'head';
/** Prefix of an origin's cursor (a number: the highest originSeq applied here). */
export const CURSOR_PREFIX = 'cursor';
/** Prefix of a table's {@link StoredTableStats}; present once a write to the table committed. */
export const TABLE_PREFIX = 'table';
/** Prefix of the highest cursor a resync adopted for an origin (verify allows the log a gap up to it). */
export const ADOPTED_PREFIX = 'adopted';

export type MetaPrefix = typeof CURSOR_PREFIX | typeof TABLE_PREFIX | typeof ADOPTED_PREFIX;

export function cursorKey(origin: string): MetaKey {
  return [CURSOR_PREFIX, origin];
}

export function tableKey(table: string): MetaKey {
  return [TABLE_PREFIX, table];
}

export function adoptedKey(origin: string): MetaKey {
  return [ADOPTED_PREFIX, origin];
}

/** The `getRange` bounds of every meta key with `prefix`, in name order. */
export function metaRange(prefix: MetaPrefix): { start: Key; end: Key } {
  return { start: [prefix], end: [prefix, '\uffff'] };
}

/** The name part (origin or table) of a `[prefix, name]` meta key read from a range. */
export function metaName(key: MetaKey): string {
  return (key as [MetaPrefix, string])[1];
}

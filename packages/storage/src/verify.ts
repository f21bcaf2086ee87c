import { compareVersions, type Cursors } from '@replica/transport-api';
import { DIGEST_BYTES, recordHash, xorInto } from './digest.js';
import { ADOPTED_PREFIX, HEAD_KEY, metaName, metaRange, recordKey, type Head, type ReadOnlyDbs } from './schema.js';

/**
 * The problems found when checking that records, log, index, cursors and table stats
 * agree (empty when consistent). `tables` and `cursors` are the store's committed
 * stats (hex digests) and cursors. Reads every database in full and writes nothing:
 * for tests and operators, not for hot paths. Call it in one synchronous turn, so that
 * every read sees the same commit.
 */
export function verifyStore(
  dbs: ReadOnlyDbs,
  tables: Readonly<Record<string, { readonly count: number; readonly digest: string }>>,
  cursors: Cursors,
): string[] {
  const problems: string[] = [];
  const stats = new Map<string, { count: number; digest: Buffer }>();
  for (const { key, value } of dbs.records.getRange({})) {
    const [table, id] = key;
    let s = stats.get(table);
    if (!s) stats.set(table, (s = { count: 0, digest: Buffer.alloc(DIGEST_BYTES) }));
    if (value.d !== undefined) s.count++;
    xorInto(s.digest, recordHash(id, value.v));
  }
  for (const [table, s] of stats) {
    const want = { count: s.count, digest: s.digest.toString('hex') };
    const got = tables[table];
    if (!got || got.count !== want.count || got.digest !== want.digest) {
      problems.push(`table ${table}: stats ${JSON.stringify(got)} but records give ${JSON.stringify(want)}`);
    }
  }
  for (const table of Object.keys(tables)) if (!stats.has(table)) problems.push(`table ${table}: stats without records`);

  const maxOrigin = new Map<string, number>();
  const adopted = new Map<string, number>();
  for (const { key, value } of dbs.meta.getRange(metaRange(ADOPTED_PREFIX))) adopted.set(metaName(key), value as number);
  let expectSeq: number | undefined;
  let lastKey = 0;
  for (const { key, value } of dbs.log.getRange({})) {
    if (expectSeq !== undefined && key !== expectSeq) problems.push(`log: gap before seq ${key} (expected ${expectSeq})`);
    expectSeq = key + 1;
    lastKey = key;
    const [origin, originSeq, table, id, version] = value;
    const prevMax = maxOrigin.get(origin);
    const coveredByResync = originSeq - 1 <= (adopted.get(origin) ?? 0);
    if (prevMax !== undefined && originSeq !== prevMax + 1 && !(originSeq > prevMax && coveredByResync)) {
      problems.push(`log: origin ${origin} jumps from ${prevMax} to ${originSeq} at seq ${key}`);
    }
    maxOrigin.set(origin, originSeq);
    if (dbs.index.get([origin, originSeq]) !== key) problems.push(`index: ${origin}/${originSeq} does not point at seq ${key}`);
    const rec = dbs.records.get(recordKey(table, id));
    if (!rec || compareVersions(rec.v, version) < 0) problems.push(`records: ${table}/${id} older than log entry ${key}`);
  }
  const head = dbs.meta.get(HEAD_KEY) as Head | undefined;
  if (lastKey !== 0 && head?.seq !== lastKey) problems.push(`head: seq ${head?.seq} but the log ends at ${lastKey}`);
  for (const [origin, max] of maxOrigin) {
    const want = Math.max(max, adopted.get(origin) ?? 0);
    if (cursors[origin] !== want) problems.push(`cursor: ${origin} is ${cursors[origin]} but the log and resyncs give ${want}`);
  }
  return problems;
}

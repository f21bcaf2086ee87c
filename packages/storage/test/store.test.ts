import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  InvalidRecordError,
  InvalidTableError,
  RecordExistsError,
  StoreClosedError,
  silentLogger,
  type LogEntry,
} from '@replica/transport-api';
import { tempStores } from './helpers.js';

const t = tempStores();
afterEach(() => t.cleanup());

describe('local writes', () => {
  it('creates tables on first write and reads records back', async () => {
    const s = t.open('n1');
    expect(s.hasTable('users')).toBe(false);
    const r = await s.put('users', { id: 'a', name: 'Ada' }, 'insert');
    expect(r).toMatchObject({ seq: 1, created: true });
    expect(r.version[2]).toBe('n1');
    expect(s.get('users', 'a')).toEqual({ id: 'a', name: 'Ada' });
    expect(s.hasTable('users')).toBe(true);
    expect(s.tables().users?.count).toBe(1);
  });

  it('insert refuses a live id; upsert replaces it and reports created=false', async () => {
    const s = t.open('n1');
    await s.put('users', { id: 'a', v: 1 }, 'insert');
    await expect(s.put('users', { id: 'a', v: 2 }, 'insert')).rejects.toBeInstanceOf(RecordExistsError);
    const r = await s.put('users', { id: 'a', v: 3 }, 'upsert');
    expect(r.created).toBe(false);
    expect(s.get('users', 'a')).toEqual({ id: 'a', v: 3 });
    expect(s.lastSeq()).toBe(2); // the refused insert wrote nothing
  });

  it('deletes with a tombstone that keeps a version; deleting again is a no-op', async () => {
    const s = t.open('n1');
    const put = await s.put('users', { id: 'a' });
    const del = await s.delete('users', 'a');
    expect(del).toBeDefined();
    expect(s.get('users', 'a')).toBeUndefined();
    expect(s.versionOf('users', 'a')).toEqual(del?.version);
    expect(del!.version > put.version || del!.version[1] > put.version[1]).toBe(true);
    expect(await s.delete('users', 'a')).toBeUndefined();
    expect(s.tables().users?.count).toBe(0);
    // an insert may re-create a deleted id
    expect((await s.put('users', { id: 'a' }, 'insert')).created).toBe(true);
  });

  it('gives every write a gap-free seq and originSeq, even when concurrent', async () => {
    const s = t.open('n1');
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => s.put('t', { id: `k${i}` })));
    expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    const log = s.readLog(1, 1000);
    expect(log.map((e) => e.originSeq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(s.cursors()).toEqual({ n1: 500 });
    expect(s.verify()).toEqual([]);
  });

  it('keeps digests and counts right when concurrent writes hit the same ids in one commit', async () => {
    const s = t.open('n1');
    const ops = Array.from({ length: 300 }, (_, i) =>
      i % 5 === 4 ? s.delete('t', `k${i % 7}`) : s.put('t', { id: `k${i % 7}`, i }, i % 3 === 0 ? 'insert' : 'upsert').catch((e: unknown) => e),
    );
    await Promise.all(ops);
    expect(s.verify()).toEqual([]);
    expect(s.tables().t?.count).toBe([...Array(7).keys()].filter((k) => s.get('t', `k${k}`) !== undefined).length);
    // One table's stats read alone are the same as in the whole list.
    expect(s.tableStats('t')).toEqual(s.tables().t);
    expect(s.tableStats('never')).toBeUndefined();
  });

  it('rejects bad input with the shared error classes and writes nothing', async () => {
    const s = t.open('n1');
    await expect(s.put('1bad', { id: 'a' })).rejects.toBeInstanceOf(InvalidTableError);
    await expect(s.put('t', { id: 5 } as never)).rejects.toBeInstanceOf(InvalidRecordError);
    await expect(s.put('t', { id: '' })).rejects.toBeInstanceOf(InvalidRecordError);
    await expect(s.put('t', { id: 'x'.repeat(513) })).rejects.toBeInstanceOf(InvalidRecordError);
    await expect(s.put('t', [] as never)).rejects.toBeInstanceOf(InvalidRecordError);
    let deep: Record<string, unknown> = {};
    const root = { id: 'deep', d: deep };
    for (let i = 0; i < 40; i++) deep = deep['d'] = {};
    await expect(s.put('t', root)).rejects.toThrow(/nesting deeper than 32 levels/);
    // values that would not read back as written
    await expect(s.put('t', { id: 'lone\ud800' })).rejects.toThrow(/well-formed Unicode/);
    await expect(s.put('t', { id: 's', x: ['ok', 'bad\udfff'] })).rejects.toThrow(/strings must be well-formed Unicode/);
    await expect(s.put('t', { id: 'k', '\udbff': 1 })).rejects.toThrow(/field names must be well-formed Unicode/);
    await expect(s.put('t', { id: 'n', x: { y: Number.POSITIVE_INFINITY } })).rejects.toThrow(/numbers must be finite/);
    await expect(s.put('t', { id: 'n', x: Number.NaN })).rejects.toThrow(/numbers must be finite/);
    // msgpack decoding renames an own "__proto__" key (as JSON.parse makes) to "__proto_"
    await expect(s.put('t', JSON.parse('{"id":"p","a":[{"__proto__":{"x":1}}]}'))).rejects.toThrow(/field names must not be "__proto__"/);
    expect(s.lastSeq()).toBe(0);
    expect(s.tables()).toEqual({});
  });

  it('refuses use after close', async () => {
    const s = t.open('n1');
    await s.close();
    await expect(s.put('t', { id: 'a' })).rejects.toBeInstanceOf(StoreClosedError);
    expect(() => s.get('t', 'a')).toThrow(StoreClosedError);
  });
});

describe('the log', () => {
  it('reads in bounded batches from a sequence', async () => {
    const s = t.open('n1');
    for (let i = 0; i < 25; i++) await s.put('t', { id: `k${i}` });
    expect(s.readLog(1, 10).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(s.readLog(21, 10).map((e) => e.seq)).toEqual([21, 22, 23, 24, 25]);
    expect(s.readLog(26, 10)).toEqual([]);
    const e = s.readLog(3, 1)[0] as LogEntry;
    expect(e).toMatchObject({ seq: 3, origin: 'n1', originSeq: 3, table: 't', id: 'k2', op: 'put', value: { id: 'k2' } });
  });

  it('reads the same log through a tiny in-memory tail as through LMDB', async () => {
    const small = t.open('n1', { logCacheEntries: 3 });
    const big = t.open('n2');
    for (let i = 0; i < 25; i++) {
      await small.put('t', { id: `k${i}` });
      await big.put('t', { id: `k${i}` });
    }
    const strip = (es: LogEntry[]) => es.map(({ origin: _o, version: _v, ...rest }) => rest);
    for (const [from, limit] of [[1, 100], [20, 3], [23, 10], [22, 1], [26, 5]] as const) {
      expect(strip(small.readLog(from, limit)), `${from}+${limit}`).toEqual(strip(big.readLog(from, limit)));
    }
    expect(small.readLog(23, 10).map((e) => e.seq)).toEqual([23, 24, 25]);
  });

  it('notifies commit listeners with the newest seq, once per commit', async () => {
    const s = t.open('n1');
    const seen: number[] = [];
    const off = s.onCommit((seq) => seen.push(seq));
    await Promise.all([s.put('t', { id: 'a' }), s.put('t', { id: 'b' }), s.put('t', { id: 'c' })]);
    await new Promise((r) => setImmediate(r));
    expect(seen.at(-1)).toBe(3);
    off();
    await s.put('t', { id: 'd' });
    await new Promise((r) => setImmediate(r));
    expect(seen.at(-1)).toBe(3);
  });

  it('prunes beyond retention, keeps the newest entry, and asks for a resync when a cursor fell off', async () => {
    const s = t.open('n1', { retention: { maxEntries: 10 } });
    for (let i = 0; i < 30; i++) await s.put('t', { id: `k${i}` });
    expect(await s.prune()).toBe(20);
    expect(s.firstSeq()).toBe(21);
    expect(s.readLog(1, 100).map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 21));
    expect(s.logStart({})).toEqual({ kind: 'resync', origin: 'n1', needed: 1, oldest: 21 });
    expect(s.logStart({ n1: 20 })).toEqual({ kind: 'stream', fromSeq: 21 });
    expect(s.logStart({ n1: 30 })).toEqual({ kind: 'stream', fromSeq: 31 });
    expect(s.verify()).toEqual([]);
  });

  it('finds the local seq of an entry by origin and originSeq, own or applied, until it is pruned', async () => {
    const a = t.open('a');
    const b = t.open('b', { retention: { maxEntries: 3 } });
    await a.put('t', { id: 'x' });
    await a.put('t', { id: 'y' });
    await b.put('t', { id: 'z' });
    await b.applyRemote(a.readLog(1, 10));
    await b.put('t', { id: 'w' });
    expect([b.seqOf('b', 1), b.seqOf('a', 1), b.seqOf('a', 2), b.seqOf('b', 2)]).toEqual([1, 2, 3, 4]);
    expect(b.seqOf('a', 3)).toBeUndefined(); // not applied here
    expect(b.seqOf('c', 1)).toBeUndefined(); // unknown origin
    expect(a.seqOf('a', 2)).toBe(2);
    expect(await b.prune()).toBe(1);
    expect(b.seqOf('b', 1)).toBeUndefined(); // pruned
    expect(b.seqOf('a', 1)).toBe(2);
  });

  it('prunes by age', async () => {
    let now = 1_000_000;
    const s = t.open('n1', { retention: { maxAgeMs: 1000 }, wallClock: () => now });
    for (let i = 0; i < 5; i++) await s.put('t', { id: `old${i}` });
    now += 5000;
    for (let i = 0; i < 3; i++) await s.put('t', { id: `new${i}` });
    expect(await s.prune()).toBe(5);
    expect(s.readLog(1, 100).map((e) => e.id)).toEqual(['new0', 'new1', 'new2']);
  });

  it('logs a failed periodic prune, and tries again at the next interval', async () => {
    let broken = false;
    const warnings: [object, string][] = [];
    const logger = { ...silentLogger, warn: (obj: object, msg: string) => void warnings.push([obj, msg]) };
    const wallClock = () => {
      if (broken) throw new Error('no clock');
      return Date.now();
    };
    const s = t.open('n1', { pruneIntervalMs: 5, logger, wallClock });
    await s.put('t', { id: 'a' });
    expect(warnings).toEqual([]);
    broken = true; // retention reads the wall clock first: every periodic prune now fails
    await vi.waitFor(() => expect(warnings.length).toBeGreaterThanOrEqual(2));
    expect(warnings[0]).toEqual([{ err: 'no clock' }, 'store: log retention failed; retrying at the next interval']);
    broken = false;
  });

  it('reads back any id exactly, in snapshots and verify too (long ids, U+0000, control characters)', async () => {
    const s = t.open('n1');
    const ids = ['x'.repeat(62), 'é'.repeat(200), 'a\u0000b', '\u0000', '\u0001', '007', '-5', ' '];
    for (const id of ids) await s.put('t', { id, v: id.length });
    await s.put('u', { id: 'y'.repeat(300) });
    for (const id of ids) expect(s.get('t', id), JSON.stringify(id)).toEqual({ id, v: id.length });
    const snap = [...s.snapshot(3).batches].flat();
    expect(snap.map((r) => [r.table, r.id]).sort()).toEqual([...ids.map((id) => ['t', id]), ['u', 'y'.repeat(300)]].sort());
    expect(s.tables()['t']?.count).toBe(ids.length);
    expect(s.verify()).toEqual([]);
  });

  it('keeps entries an outbox still holds, whatever retention says, until it moves on', async () => {
    let now = 1_000_000;
    const s = t.open('n1', { retention: { maxEntries: 5, maxAgeMs: 1000 }, wallClock: () => now });
    for (let i = 0; i < 20; i++) await s.put('t', { id: `k${i}` });
    now += 5000;
    s.retainLog('outbox', 8);
    s.retainLog('other', 12);
    expect(await s.prune()).toBe(7);
    expect(s.firstSeq()).toBe(8);
    s.retainLog('outbox', 15);
    expect(await s.prune()).toBe(4); // down to the other holder
    s.retainLog('other', undefined);
    expect(await s.prune()).toBe(3);
    expect(s.firstSeq()).toBe(15);
    s.retainLog('outbox', undefined);
    expect(await s.prune()).toBe(5); // age: all but the newest
    expect(s.firstSeq()).toBe(20);
    expect(s.verify()).toEqual([]);
  });
});

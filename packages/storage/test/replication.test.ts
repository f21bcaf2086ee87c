import { afterEach, describe, expect, it } from 'vitest';
import type { LogEntry } from '@replica/transport-api';
import type { Store } from '../src/index.js';
import { rng, shuffle, tempStores } from './helpers.js';

const t = tempStores();
afterEach(() => t.cleanup());

/** Splits a store's own log into whole batches of `size` entries. */
function batchesOf(s: Store, size: number): LogEntry[][] {
  const out: LogEntry[][] = [];
  for (let from = 1; from <= s.lastSeq(); from += size) out.push(s.readLog(from, size));
  return out;
}

/**
 * Delivers every batch to `to` in the given order, then keeps redelivering the
 * deferred ones (as a transport would) until nothing is deferred.
 */
async function deliver(to: Store, batches: LogEntry[][], rand: () => number): Promise<void> {
  let pending = shuffle(batches, rand);
  for (let round = 0; pending.length > 0; round++) {
    if (round > batches.length + 1) throw new Error('delivery does not converge');
    const again: LogEntry[][] = [];
    for (const b of pending) if ((await to.applyRemote(b)).deferred > 0) again.push(b);
    pending = again;
  }
}

describe('applyRemote', () => {
  it('applies entries with records, log entries and cursors, and copies the version', async () => {
    const a = t.open('a');
    const b = t.open('b');
    await a.put('t', { id: 'x', n: 1 });
    await a.put('t', { id: 'y', n: 2 });
    const r = await b.applyRemote(a.readLog(1, 10));
    expect(r).toEqual({ applied: 2, skipped: 0, deferred: 0, cursors: { a: 2 } });
    expect(b.get('t', 'x')).toEqual({ id: 'x', n: 1 });
    expect(b.versionOf('t', 'x')).toEqual(a.versionOf('t', 'x'));
    expect(b.tables()).toEqual(a.tables());
    expect(b.readLog(1, 10).map((e) => [e.seq, e.origin, e.originSeq])).toEqual([[1, 'a', 1], [2, 'a', 2]]);
    expect(b.verify()).toEqual([]);
  });

  it('records the replication lag of applied entries (origin write to commit here)', async () => {
    let now = 10_000;
    const a = t.open('a', { wallClock: () => now });
    const b = t.open('b', { wallClock: () => now });
    await a.put('t', { id: 'x' });
    await a.put('t', { id: 'y' });
    now += 40; // the entries reach b 40 ms after they were written
    await b.applyRemote(a.readLog(1, 10));
    await b.applyRemote(a.readLog(1, 10)); // redelivery: skipped, not counted again
    const h = b.lagHistogram();
    expect(h.count).toBe(2);
    expect(h.sumMs).toBe(80);
    expect(h.counts[h.bucketsMs.indexOf(50)]).toBe(2); // 30 < 40 <= 50
  });

  it('is idempotent under redelivery: a batch applied twice changes nothing the second time', async () => {
    const a = t.open('a');
    const b = t.open('b');
    for (let i = 0; i < 20; i++) await a.put('t', { id: `k${i % 7}`, i });
    const batch = a.readLog(1, 100);
    await b.applyRemote(batch);
    const digest = b.tables();
    const seq = b.lastSeq();
    const again = await b.applyRemote(batch);
    expect(again).toMatchObject({ applied: 0, skipped: 20, deferred: 0 });
    expect(b.tables()).toEqual(digest);
    expect(b.lastSeq()).toBe(seq);
  });

  it('defers entries after a gap instead of applying them out of order', async () => {
    const a = t.open('a');
    const b = t.open('b');
    for (let i = 0; i < 10; i++) await a.put('t', { id: `k${i}` });
    const [first, second] = batchesOf(a, 5) as [LogEntry[], LogEntry[]];
    expect(await b.applyRemote(second)).toMatchObject({ applied: 0, deferred: 5 });
    expect(b.tables()).toEqual({});
    expect(await b.applyRemote(first)).toMatchObject({ applied: 5, deferred: 0 });
    expect(await b.applyRemote(second)).toMatchObject({ applied: 5, deferred: 0, cursors: { a: 10 } });
    expect(b.tables()).toEqual(a.tables());
  });

  it('converges to one digest under concurrent writes from three origins, whatever the order (LWW)', async () => {
    for (const seed of [1, 2, 3]) {
      const rand = rng(seed);
      const origins = ['a', 'b', 'c'].map((n) => t.open(n));
      // Concurrent updates and deletes of a small key space, interleaved across origins.
      for (let i = 0; i < 300; i++) {
        const s = origins[Math.floor(rand() * 3)] as Store;
        const id = `k${Math.floor(rand() * 20)}`;
        if (rand() < 0.2) await s.delete('t', id);
        else await s.put('t', { id, from: s.name, i });
      }
      const all = origins.map((o) => batchesOf(o, 1 + Math.floor(rand() * 20)));
      const replicas = [t.open('r1'), t.open('r2'), t.open('r3')];
      for (const r of replicas) {
        const order = shuffle([0, 1, 2], rand);
        // interleave whole batches of the three origins in a random order
        const mixed = shuffle(order.flatMap((o) => all[o] as LogEntry[][]), rand);
        await deliver(r, mixed, rand);
        expect(r.verify(), `seed ${seed}`).toEqual([]);
      }
      // every origin also receives the others' logs
      for (const [i, o] of origins.entries()) {
        await deliver(o, all.filter((_, j) => j !== i).flat(), rand);
      }
      const digests = [...replicas, ...origins].map((s) => JSON.stringify(s.tables()));
      expect(new Set(digests).size, `seed ${seed}`).toBe(1);
      // and the surviving versions are the newest of each id
      for (let k = 0; k < 20; k++) {
        const versions = origins.map((o) => o.versionOf('t', `k${k}`));
        for (const r of replicas) expect(r.versionOf('t', `k${k}`)).toEqual(versions[0]);
      }
      await t.cleanup();
    }
  });

  it('tombstones win over older puts and lose to newer ones', async () => {
    let clockA = 1000;
    let clockB = 2000;
    const a = t.open('a', { wallClock: () => clockA });
    const b = t.open('b', { wallClock: () => clockB });
    await a.put('t', { id: 'x', v: 'a' });
    await b.applyRemote(a.readLog(1, 10));
    await b.delete('t', 'x'); // at 2000: newer than a's put
    clockA = 1500;
    await a.put('t', { id: 'x', v: 'a2' }); // at 1500: older than b's delete
    await b.applyRemote(a.readLog(2, 10));
    await a.applyRemote(b.readLog(2, 10));
    expect(a.get('t', 'x')).toBeUndefined();
    expect(b.get('t', 'x')).toBeUndefined();
    expect(a.tables()).toEqual(b.tables());
    clockA = 3000;
    await a.put('t', { id: 'x', v: 'a3' }); // newer than the tombstone
    await b.applyRemote(a.readLog(3, 10));
    expect(b.get('t', 'x')).toEqual({ id: 'x', v: 'a3' });
    expect(a.tables()).toEqual(b.tables());
  });

  it('breaks version ties by node name', async () => {
    const a = t.open('a', { wallClock: () => 5000 });
    const b = t.open('b', { wallClock: () => 5000 });
    await a.put('t', { id: 'x', v: 'a' });
    await b.put('t', { id: 'x', v: 'b' });
    await a.applyRemote(b.readLog(1, 10));
    await b.applyRemote(a.readLog(1, 10));
    expect(a.get('t', 'x')).toEqual({ id: 'x', v: 'b' });
    expect(b.get('t', 'x')).toEqual({ id: 'x', v: 'b' });
  });

  it('a node whose wall clock is behind still issues versions newer than what it observed (HLC)', async () => {
    const ahead = t.open('a', { wallClock: () => 10_000_000 });
    const behind = t.open('b', { wallClock: () => 1_000 });
    await ahead.put('t', { id: 'x', v: 'ahead' });
    await behind.applyRemote(ahead.readLog(1, 10));
    const w = await behind.put('t', { id: 'x', v: 'behind, but later' });
    expect(w.version[0]).toBe(10_000_000);
    await ahead.applyRemote(behind.readLog(2, 10));
    expect(ahead.get('t', 'x')).toEqual({ id: 'x', v: 'behind, but later' });
  });

  it('relays: entries applied from a peer can be streamed on to a third node in origin order', async () => {
    const a = t.open('a');
    const b = t.open('b');
    const c = t.open('c');
    for (let i = 0; i < 10; i++) await a.put('t', { id: `a${i}` });
    for (let i = 0; i < 5; i++) await b.put('t', { id: `b${i}` });
    await b.applyRemote(a.readLog(1, 100));
    const start = b.logStart(c.cursors());
    expect(start).toEqual({ kind: 'stream', fromSeq: 1 });
    await c.applyRemote(b.readLog(1, 100));
    expect(c.cursors()).toEqual({ a: 10, b: 5 });
    expect(c.tables()).toEqual(b.tables());
    expect(b.logStart(c.cursors())).toEqual({ kind: 'stream', fromSeq: b.lastSeq() + 1 });
    // c already has a's entries: a direct delivery from a is skipped, not duplicated
    expect(await c.applyRemote(a.readLog(1, 100))).toMatchObject({ applied: 0, skipped: 10 });
  });

  it("recovers its own origin's entries from a peer after losing its data", async () => {
    const a = t.open('a');
    const b = t.open('b');
    for (let i = 0; i < 5; i++) await a.put('t', { id: `k${i}` });
    await b.applyRemote(a.readLog(1, 100));
    const fresh = t.open('a'); // same name, empty disk
    await fresh.applyRemote(b.readLog(1, 100));
    const w = await fresh.put('t', { id: 'new' });
    const entry = fresh.readLog(w.seq, 1)[0];
    expect(entry?.originSeq).toBe(6); // continues after its old writes, so peers do not skip it
  });
});

describe('merge resync', () => {
  it('merges a snapshot by LWW: never replaces newer data, never resurrects deletes', async () => {
    let now = 1000;
    const a = t.open('a', { retention: { maxEntries: 5 }, wallClock: () => now });
    const b = t.open('b', { wallClock: () => now });
    for (let i = 0; i < 20; i++) await a.put('t', { id: `k${i}`, from: 'a' });
    await a.delete('t', 'k3');
    await a.prune();
    now = 5000;
    await b.put('t', { id: 'k1', from: 'b, newer' }); // newer than a's k1
    await b.put('t', { id: 'k3', from: 'b, older than a delete?' });
    now = 900; // b's clock cannot go back past what it issued (HLC)
    expect(a.logStart(b.cursors())).toMatchObject({ kind: 'resync', origin: 'a', needed: 1 });

    const snap = a.snapshot(7);
    let changed = 0;
    for (const batch of snap.batches) changed += await b.mergeSnapshot(batch);
    await b.adoptCursors(snap.cursors);
    expect(changed).toBe(18); // a's 20 records (k3 a tombstone), less k1 and k3 where b is newer
    expect(b.get('t', 'k1')).toEqual({ id: 'k1', from: 'b, newer' });
    expect(b.get('t', 'k3')).toEqual({ id: 'k3', from: 'b, older than a delete?' }); // b's put at 5000 is newer than the delete
    expect(b.get('t', 'k7')).toEqual({ id: 'k7', from: 'a' });
    expect(b.cursors()).toMatchObject({ a: 21, b: 2 });
    expect(a.logStart(b.cursors())).toEqual({ kind: 'stream', fromSeq: 22 });
    expect(b.verify()).toEqual([]);
  });

  it('a tombstone in the snapshot deletes an older live record', async () => {
    let now = 1000;
    const a = t.open('a', { wallClock: () => now });
    const b = t.open('b', { wallClock: () => now });
    await b.put('t', { id: 'x' });
    now = 2000;
    await a.put('t', { id: 'x' });
    await a.delete('t', 'x');
    for (const batch of a.snapshot(100).batches) await b.mergeSnapshot(batch);
    expect(b.get('t', 'x')).toBeUndefined();
    expect(b.tables().t?.count).toBe(0);
  });
});

// The store on a filesystem that fills up (a real tmpfs): a commit that finds no space
// is refused as a whole, the store keeps serving reads and refuses writes, and takes
// them again by itself once space returns, with nothing acknowledged lost and nothing
// half-written. Vitest fails the run on any unhandled rejection, which is how lmdb-js's
// "Commit failed" used to take the node down.
import { afterEach, describe, expect, it } from 'vitest';
import { StorageFailedError, StorageFullError, type LogEntry, type RecordValue } from '@replica/transport-api';
import { mountTmpfs, tmpfsUnavailable, type TmpfsMount } from '@replica/transport-api/testing/tmpfs';
import { Store, type StoreOptions } from '../src/index.js';
import { isLackOfSpace, minFreeBytes } from '../src/space.js';
import { tempStores } from './helpers.js';

const MiB = 1024 * 1024;
const pad = 'x'.repeat(360);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes 400-byte records from `concurrency` writers until `stopAfterRefusals` writes were refused (or the bounds). */
async function fill(store: Store, prefix: string, o: { concurrency: number; maxWrites: number; maxMs: number; stopAfterRefusals: number }) {
  const acked: string[] = [];
  const refused: unknown[] = [];
  let next = 0;
  const deadline = Date.now() + o.maxMs;
  const worker = async () => {
    while (refused.length < o.stopAfterRefusals && next < o.maxWrites && Date.now() < deadline) {
      const id = `${prefix}-${next++}`;
      try {
        await store.put('items', { id, pad } as RecordValue, 'insert');
        acked.push(id);
      } catch (err) {
        refused.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { acked, refused };
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
  return Date.now() - t0;
}

describe('classifying a failed commit', () => {
  it('counts ENOSPC, EDQUOT and a full LMDB map as lack of space; EIO or an unknown cause only on a (nearly) full filesystem', () => {
    const full = { freeBytes: 0, totalBytes: 3 * MiB };
    const roomy = { freeBytes: 500 * MiB, totalBytes: 1024 * MiB };
    expect(isLackOfSpace(28, roomy, 0)).toBe(true);
    expect(isLackOfSpace(122, roomy, 0)).toBe(true);
    expect(isLackOfSpace(-30792, roomy, 0)).toBe(true);
    // LMDB reports a write cut short by a full filesystem as EIO
    expect(isLackOfSpace(5, full, 0)).toBe(true);
    expect(isLackOfSpace(5, roomy, 0)).toBe(false);
    expect(isLackOfSpace(5, undefined, 0)).toBe(false);
    expect(isLackOfSpace(undefined, full, 0)).toBe(true);
    expect(isLackOfSpace(undefined, roomy, 0)).toBe(false);
    // a damaged environment, a bad reader slot, a read-only filesystem: storage failed
    expect(isLackOfSpace(-30796, full, 0)).toBe(false);
    expect(isLackOfSpace(30, full, 0)).toBe(false);
  });

  it('puts the floor at a share of the filesystem, capped, or at a fixed size', () => {
    expect(minFreeBytes({ share: 0.05, maxBytes: 1024 ** 3 }, 3 * MiB)).toBe(Math.floor(3 * MiB * 0.05));
    expect(minFreeBytes({ share: 0.05, maxBytes: 1024 ** 3 }, 100 * 1024 ** 3)).toBe(1024 ** 3);
    expect(minFreeBytes({ bytes: 12345 }, 3 * MiB)).toBe(12345);
    expect(minFreeBytes({ share: 0.05 }, undefined)).toBe(0);
  });
});

describe('the free-space floor', () => {
  const stores = tempStores();
  afterEach(() => stores.cleanup());

  it('refuses local writes below the floor while replicated writes go on, and takes them again above it', async () => {
    let free = 10 * MiB;
    const store = stores.open('n1', { minFree: { bytes: 4 * MiB }, statFs: () => ({ freeBytes: free, totalBytes: 100 * MiB }), spaceCheckIntervalMs: 0 });
    const peer = stores.open('n2');
    await store.put('t', { id: 'a' });
    free = 3 * MiB;
    await sleep(150); // older than a measurement may be
    const err = await store.put('t', { id: 'b' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageFullError);
    expect((err as StorageFullError).reason).toBe('lowSpace');
    expect((err as StorageFullError).freeBytes).toBe(3 * MiB);
    expect((err as StorageFullError).minFreeBytes).toBe(4 * MiB);
    await expect(store.delete('t', 'a')).rejects.toBeInstanceOf(StorageFullError);
    expect(store.storage()).toMatchObject({ state: 'low', freeBytes: 3 * MiB, minFreeBytes: 4 * MiB, refusedWrites: { low: 2 } });
    // the floor is kept for replication: a peer's writes still commit
    await peer.put('t', { id: 'from-n2' });
    const r = await store.applyRemote(peer.readLog(1, 10));
    expect(r.applied).toBe(1);
    expect(store.get('t', 'from-n2')).toEqual({ id: 'from-n2' });
    // back above the floor (by the margin that keeps it from flapping)
    free = 4.5 * MiB;
    await sleep(150);
    await store.put('t', { id: 'b' });
    expect(store.storage().state).toBe('writable');
    expect(store.verify()).toEqual([]);
  });

  it("stops replicated writes at the engine's reserve (half the floor) before a commit can fail, and resumes by itself once space returns", async () => {
    let free = 3 * MiB;
    const store = stores.open('n1', { minFree: { bytes: 4 * MiB }, statFs: () => ({ freeBytes: free, totalBytes: 100 * MiB }), spaceCheckIntervalMs: 50 });
    const peer = stores.open('n2');
    for (let i = 0; i < 3; i++) await peer.put('t', { id: `p${i}` });
    // below the floor, above the reserve: replication goes on
    expect((await store.applyRemote(peer.readLog(1, 1))).applied).toBe(1);
    free = 2 * MiB - 1;
    await sleep(150); // older than a measurement may be
    const err = await store.applyRemote(peer.readLog(2, 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageFullError);
    expect((err as StorageFullError).reason).toBe('noSpace');
    expect((err as Error).message).toMatch(/^storage full: free space 2097151 bytes is below the storage engine's reserve of 2097152 bytes \(half of MIN_FREE_BYTES\)/);
    // every write is refused now, none of them by a failed commit; reads go on
    await expect(store.put('t', { id: 'local' })).rejects.toBeInstanceOf(StorageFullError);
    expect(store.storage()).toMatchObject({ state: 'full', failedCommits: 0, refusedWrites: { full: 2 }, cause: { message: expect.stringMatching(/reserve/) } });
    expect(store.storage().reason).toMatch(/^storage full: free space .* below the storage engine's reserve/);
    expect(store.get('t', 'p0')).toEqual({ id: 'p0' });
    expect(store.cursors()['n2']).toBe(1);
    let writable = false;
    const resumed = store.whenWritable().then(() => (writable = true));
    await sleep(200);
    expect(writable, 'still full while space is short').toBe(false);
    free = 5 * MiB;
    await resumed;
    expect((await store.applyRemote(peer.readLog(2, 10))).applied).toBe(2);
    expect(store.cursors()['n2']).toBe(3);
    expect(store.storage()).toMatchObject({ state: 'writable', failedCommits: 0 });
    expect(store.verify()).toEqual([]);
  });
});

const noTmpfs = tmpfsUnavailable();

describe.skipIf(noTmpfs !== undefined)(`a store on a filesystem that fills up${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, () => {
  const stores = tempStores();
  let mount: TmpfsMount | undefined;
  afterEach(async () => {
    await stores.cleanup();
    mount?.unmount();
    mount = undefined;
  });

  const open = (name: string, opts: Partial<StoreOptions> = {}) => {
    mount = mountTmpfs(3 * MiB);
    // no floor: the disk fills up to the last byte and a commit fails
    return stores.open(name, { minFree: { bytes: 0 }, spaceCheckIntervalMs: 100, ...opts }, mount.dir);
  };

  it.each(['committed', 'flushed'] as const)('refuses the commit that found no space as a whole, serves reads, and takes writes again once space returns (durability %s)', async (durability) => {
    const store = open('n1', { durability });
    const { acked, refused } = await fill(store, 'a', { concurrency: 32, maxWrites: 20_000, maxMs: 30_000, stopAfterRefusals: 200 });
    expect(refused.length, 'the disk filled up').toBeGreaterThanOrEqual(200);
    expect(acked.length, 'writes were acknowledged before it did').toBeGreaterThan(500);
    for (const err of refused) {
      expect(err).toBeInstanceOf(StorageFullError);
      expect((err as StorageFullError).reason).toBe('noSpace');
    }
    const s = store.storage();
    expect(s.state).toBe('full');
    expect(s.failedCommits).toBeGreaterThan(0);
    expect(s.cause?.message).toMatch(/./);
    // nothing acknowledged is missing, nothing refused is there, nothing half-written
    expect(store.lastSeq()).toBe(acked.length);
    expect(store.cursors()['n1']).toBe(acked.length);
    expect(store.tables()['items']?.count).toBe(acked.length);
    for (const id of acked) expect(store.get('items', id)?.id).toBe(id);
    expect(store.verify()).toEqual([]);
    // every write is refused at once, without trying LMDB
    await expect(store.put('items', { id: 'late', pad } as RecordValue)).rejects.toBeInstanceOf(StorageFullError);
    await sleep(300);
    expect(store.storage().state, 'no space came back: still full').toBe('full');

    (mount as TmpfsMount).resize(64 * MiB);
    const recoveredMs = await until(() => store.storage().state === 'writable', 10_000, 'writes accepted again');
    expect(recoveredMs).toBeLessThan(5000);
    await store.whenWritable();
    const more = await fill(store, 'b', { concurrency: 8, maxWrites: 500, maxMs: 20_000, stopAfterRefusals: 1 });
    expect(more.refused).toEqual([]);
    expect(store.lastSeq()).toBe(acked.length + 500);
    expect(store.verify()).toEqual([]);

    // and a reopened store holds exactly what was acknowledged
    const path = (mount as TmpfsMount).dir;
    await store.close();
    const again = stores.open('n1', { minFree: { bytes: 0 }, durability }, path);
    expect(again.lastSeq()).toBe(acked.length + 500);
    for (const id of [...acked, ...more.acked]) expect(again.get('items', id)?.id).toBe(id);
    expect(again.verify()).toEqual([]);
  });

  it('writes nothing of a batch staged behind one that failed (commits are pipelined; state ran ahead)', async () => {
    const store = open('n1');
    const m = mount as TmpfsMount;
    const { statfsSync } = await import('node:fs');
    const free = () => {
      const f = statfsSync(m.dir);
      return f.bavail * f.bsize;
    };
    let acked = 0;
    let n = 0;
    for (let trial = 0; trial < 5; trial++) {
      // leave less room than the big batch below needs
      while (free() > 256 * 1024) {
        await Promise.all(Array.from({ length: 20 }, () => store.put('items', { id: `f-${n++}`, pad } as RecordValue)));
        acked += 20;
      }
      // one event-loop turn: one batch of 100 writes of 64 KiB, more than the whole filesystem…
      const big = Array.from({ length: 100 }, (_, i) => store.put('items', { id: `big-${trial}-${i}`, pad: 'y'.repeat(65_536) } as RecordValue).then(() => 'ok', (e: unknown) => e));
      // …and, staged on the next turn while it commits, a small one that would fit in what
      // the big batch's failed write left allocated in the file
      const small = await new Promise<unknown>((resolve) => setImmediate(() => void store.put('items', { id: `small-${trial}` }).then(() => resolve('ok'), resolve)));
      const outcomes = await Promise.all(big);
      expect(outcomes.filter((o) => o instanceof StorageFullError).length, `trial ${trial}: the big batch failed as a whole: ${String(outcomes[0])} ${JSON.stringify(store.storage())}`).toBe(100);
      expect(small, `trial ${trial}: the batch behind the failed one must not commit`).toBeInstanceOf(StorageFullError);
      expect(store.lastSeq()).toBe(acked);
      expect(store.verify()).toEqual([]);
      // room for the next trial
      m.resize(m.sizeBytes + 512 * 1024);
      await until(() => store.storage().state === 'writable', 10_000, 'writes accepted again');
    }
    expect(store.tables()['items']?.count).toBe(acked);
  });

  it('refuses replicated batches when full, keeps its cursors where they were, and applies the rest once space returns', async () => {
    const store = open('n2');
    const origin = stores.open('n1');
    // the origin writes more than the full disk can take; n2 applies batch after batch
    for (let i = 0; i < 6000; i++) void origin.put('items', { id: `r-${i}`, pad } as RecordValue);
    await origin.put('items', { id: 'r-last', pad } as RecordValue);
    let pos = 1;
    let refusedAt: number | undefined;
    while (pos <= origin.lastSeq()) {
      const batch: LogEntry[] = origin.readLog(pos, 100);
      try {
        await store.applyRemote(batch);
        pos += batch.length;
      } catch (err) {
        expect(err).toBeInstanceOf(StorageFullError);
        refusedAt = pos;
        break;
      }
    }
    expect(refusedAt, 'the disk filled up before the origin\'s log was applied').toBeDefined();
    expect(store.cursors()['n1']).toBe((refusedAt as number) - 1);
    expect(store.verify()).toEqual([]);
    let waited = false;
    const writable = store.whenWritable().then(() => (waited = true));
    await sleep(200);
    expect(waited).toBe(false);
    await expect(store.applyRemote(origin.readLog(pos, 100))).rejects.toBeInstanceOf(StorageFullError);

    (mount as TmpfsMount).resize(64 * MiB);
    await writable;
    while (pos <= origin.lastSeq()) {
      const batch = origin.readLog(pos, 500);
      const r = await store.applyRemote(batch);
      expect(r.deferred).toBe(0);
      pos += batch.length;
    }
    expect(store.cursors()['n1']).toBe(origin.lastSeq());
    expect(store.tables()).toEqual(origin.tables());
    expect(store.verify()).toEqual([]);
  });

  it('opens on a full filesystem, serves reads, and finds out by itself when it can write again', async () => {
    let store = open('n1');
    const { acked } = await fill(store, 'a', { concurrency: 16, maxWrites: 20_000, maxMs: 30_000, stopAfterRefusals: 20 });
    const path = (mount as TmpfsMount).dir;
    await store.close();
    // a restart on the same full disk: the node must come up and serve reads
    store = stores.open('n1', { minFree: { bytes: 0 }, spaceCheckIntervalMs: 100 }, path);
    for (const id of acked) expect(store.get('items', id)?.id).toBe(id);
    // what the failed commits left in the file may take a few more writes; then it is full again
    const again = await fill(store, 'c', { concurrency: 4, maxWrites: 5000, maxMs: 20_000, stopAfterRefusals: 1 });
    expect(again.refused[0]).toBeInstanceOf(StorageFullError);
    expect(store.storage().state).toBe('full');
    (mount as TmpfsMount).resize(64 * MiB);
    await until(() => store.storage().state === 'writable', 10_000, 'writes accepted again');
    await store.put('items', { id: 'x', pad } as RecordValue);
    acked.push(...again.acked);
    expect(store.lastSeq()).toBe(acked.length + 1);
    expect(store.verify()).toEqual([]);
  });
  it('tells a failure that is not for lack of space apart: StorageFailedError, reads go on, commits are retried with back-off, and writes resume once one goes through', async () => {
    // An I/O error while the filesystem reports plenty of room is what a failing disk
    // looks like: here a real failed commit (the tmpfs is full), measured as roomy.
    const store = open('n1', { statFs: () => ({ freeBytes: 500 * MiB, totalBytes: 1024 * MiB }) });
    const { acked, refused } = await fill(store, 'a', { concurrency: 16, maxWrites: 20_000, maxMs: 30_000, stopAfterRefusals: 20 });
    expect(refused.length).toBeGreaterThanOrEqual(20);
    for (const err of refused) expect(err).toBeInstanceOf(StorageFailedError);
    expect(store.storage().state).toBe('failed');
    expect(store.storage().cause?.message).toMatch(/./);
    expect(store.storage().reason).toMatch(/tried again with back-off/);
    for (const id of acked) expect(store.get('items', id)?.id).toBe(id);
    expect(store.verify()).toEqual([]);
    // while the cause lasts, a retry may go through (what the failed commits left in the
    // file takes a small commit), but writes fail again and are refused as before
    await sleep(300);
    const again = await fill(store, 'b', { concurrency: 4, maxWrites: 5000, maxMs: 20_000, stopAfterRefusals: 1 });
    expect(again.refused[0]).toBeInstanceOf(StorageFailedError);
    expect(store.storage().state).toBe('failed');
    // once it is gone (here: room again), a retry goes through and writes resume, no restart
    (mount as TmpfsMount).resize(64 * MiB);
    await until(() => store.storage().state === 'writable', 10_000, 'writes accepted again');
    await store.put('items', { id: 'late' });
    acked.push(...again.acked);
    for (const id of acked) expect(store.get('items', id)?.id).toBe(id);
    expect(store.lastSeq()).toBe(acked.length + 1);
    expect(store.get('items', 'late')?.id).toBe('late');
    expect(store.verify()).toEqual([]);
  });
  it('refuses to create a new store on a full filesystem, instead of dying of SIGBUS in LMDB\'s lock file', async () => {
    mount = mountTmpfs(3 * MiB);
    const { closeSync, openSync, writeSync } = await import('node:fs');
    const fd = openSync(`${mount.dir}/ballast`, 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(64 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    const err = (() => {
      try {
        stores.open('n1', {}, `${mount.dir}/data`);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(StorageFullError);
    expect((err as Error).message).toMatch(/cannot create a store in .*: 0 bytes free/);
  });
});

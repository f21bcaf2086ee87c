// A standalone node on a 3 MiB filesystem, as a new user would run it: it fills up under
// 400-byte POSTs, and the node must stay up, serve reads, answer writes with 507 and its
// code, and take writes again within seconds once the filesystem is enlarged, with no
// restart and every acknowledged write readable.
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mountTmpfs, tmpfsUnavailable, type TmpfsMount } from '@replica/transport-api/testing/tmpfs';
import { Store } from '@replica/storage';
import { buildApp } from '../src/index.js';
import { startNode, testConfig, type NodeProcess } from './helpers.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const noTmpfs = tmpfsUnavailable();

interface Answer {
  readonly status: number;
  readonly body: { code?: string; reason?: string; freeBytes?: number; minFreeBytes?: number };
}

/** POSTs 400-byte records from `concurrency` writers until `refusals` were refused (bounded in count and time). */
async function fillNode(url: string, o: { prefix: string; concurrency: number; refusals: number; maxWrites: number; maxMs: number }) {
  const acked: string[] = [];
  const refused: Answer[] = [];
  const other: string[] = [];
  let next = 0;
  const deadline = Date.now() + o.maxMs;
  const worker = async () => {
    while (refused.length < o.refusals && next < o.maxWrites && Date.now() < deadline) {
      const id = `${o.prefix}-${next++}`;
      const r = await fetch(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, pad: 'x'.repeat(380) }) });
      const text = await r.text();
      if (r.status === 201) acked.push(id);
      else if (r.status === 507) refused.push({ status: r.status, body: JSON.parse(text) as Answer['body'] });
      else other.push(`${r.status} ${text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { acked, refused, other };
}

/** Fills what is left of the filesystem with a ballast file, to the last byte. */
function ballast(dir: string): number {
  const fd = openSync(join(dir, 'ballast'), 'w');
  const chunk = Buffer.alloc(4096, 1);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return written;
}

async function readsBack(url: string, ids: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < ids.length; i += 64) {
    const got = await Promise.all(ids.slice(i, i + 64).map(async (id) => [id, (await fetch(`${url}/items/${id}`).then(async (r) => (await r.arrayBuffer(), r.status)))] as const));
    for (const [id, status] of got) if (status !== 200) missing.push(id);
  }
  return missing;
}

describe.skipIf(noTmpfs !== undefined)(`a standalone node on a 3 MiB filesystem${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, () => {
  let node: NodeProcess | undefined;
  let mount: TmpfsMount | undefined;
  afterEach(async () => {
    node?.kill('SIGKILL');
    await node?.exited;
    node = undefined;
    mount?.unmount();
    mount = undefined;
  });

  it('filled to the brim: stays up, serves reads, answers writes 507, and takes them again within seconds of the filesystem growing', async () => {
    mount = mountTmpfs(3 * MiB);
    // No floor: the disk fills up until a commit fails (the crash of issue 17).
    node = await startNode({ DATA_DIR: mount.dir, MIN_FREE_BYTES: '0' });
    const url = node.url;
    const fill = await fillNode(url, { prefix: 'a', concurrency: 16, refusals: 100, maxWrites: 20_000, maxMs: 60_000 });
    expect(fill.other, 'every write is answered 201 or 507').toEqual([]);
    expect(fill.refused.length, 'the disk filled up').toBeGreaterThanOrEqual(100);
    expect(fill.acked.length).toBeGreaterThan(1000);
    for (const r of fill.refused) expect(r.body).toMatchObject({ code: 'REPLICA_ERR_STORAGE_FULL', reason: 'noSpace' });
    const brim = ballast(mount.dir);

    expect(node.child.exitCode, 'the node is still running').toBeNull();
    expect(await readsBack(url, fill.acked)).toEqual([]);
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    const status = (await (await fetch(`${url}/status`)).json()) as { storage: { state: string; failedCommits: number }; tables: Record<string, { count: number }> };
    expect(status.storage.state).toBe('full');
    expect(status.tables['items']?.count).toBe(fill.acked.length);
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toMatch(/storage full/);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^replica_storage_state\{state="full"\} 1$/m);
    expect(metrics).toMatch(/^replica_storage_refused_writes_total\{state="full"\} [1-9]/m);
    const late = await fetch(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'late' }) });
    expect(late.status).toBe(507);
    expect(await late.json()).toMatchObject({ statusCode: 507, code: 'REPLICA_ERR_STORAGE_FULL', error: 'Insufficient Storage', reason: 'noSpace' });
    // the state is logged once, at error level
    const errorLines = node.output().split('\n').filter((l) => l.includes('"level":50'));
    expect(errorLines.filter((l) => l.includes('a commit failed for lack of space'))).toHaveLength(1);
    expect(errorLines.filter((l) => !l.includes('a commit failed for lack of space')), 'no other error was logged').toEqual([]);

    mount.resize(64 * MiB);
    const t0 = Date.now();
    let recoveredMs: number | undefined;
    while (Date.now() - t0 < 20_000) {
      const r = await fetch(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: `after-${Date.now()}` }) });
      await r.arrayBuffer();
      if (r.status === 201) {
        recoveredMs = Date.now() - t0;
        break;
      }
      expect(r.status).toBe(507);
      await sleep(50);
    }
    expect(recoveredMs, 'writes accepted again').toBeDefined();
    expect(recoveredMs as number).toBeLessThan(5000);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    const after = await fillNode(url, { prefix: 'b', concurrency: 8, refusals: 1, maxWrites: 500, maxMs: 30_000 });
    expect(after.refused).toEqual([]);
    expect(await readsBack(url, [...fill.acked, ...after.acked])).toEqual([]);
    expect(node.child.exitCode).toBeNull();
    console.log(`standalone 3 MiB, filled to the brim: ${fill.acked.length} writes acknowledged, ${fill.refused.length} refused with 507 (then a ballast file took the last ${brim} bytes); writes accepted again ${recoveredMs} ms after the filesystem grew to 64 MiB; ${after.acked.length} more acknowledged; every acknowledged write read back; no restart`);
  });

  it('below the free-space floor (the default 5 %): refuses local writes with 507 before the disk is full, and takes them again once it grows', async () => {
    mount = mountTmpfs(3 * MiB);
    node = await startNode({ DATA_DIR: mount.dir });
    const url = node.url;
    const fill = await fillNode(url, { prefix: 'a', concurrency: 16, refusals: 20, maxWrites: 20_000, maxMs: 60_000 });
    expect(fill.other).toEqual([]);
    expect(fill.refused.length).toBeGreaterThanOrEqual(20);
    for (const r of fill.refused) {
      expect(r.body).toMatchObject({ code: 'REPLICA_ERR_STORAGE_FULL', reason: 'lowSpace', minFreeBytes: Math.floor(3 * MiB * 0.05) });
      expect(r.body.freeBytes).toBeLessThan(r.body.minFreeBytes as number);
    }
    const status = (await (await fetch(`${url}/status`)).json()) as { storage: { state: string; freeBytes: number; failedCommits: number } };
    expect(status.storage.state).toBe('low');
    expect(status.storage.freeBytes, 'refused before the disk was full').toBeGreaterThan(0);
    expect(status.storage.failedCommits, 'no commit failed').toBe(0);
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toMatch(/below the floor/);
    expect(await readsBack(url, fill.acked)).toEqual([]);
    mount.resize(64 * MiB);
    const t0 = Date.now();
    for (;;) {
      const r = await fetch(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      await r.arrayBuffer();
      if (r.status === 201) break;
      expect(Date.now() - t0, 'writes accepted again').toBeLessThan(5000);
      await sleep(50);
    }
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    expect(node.child.exitCode).toBeNull();
  });
  it('a commit failure that is not for lack of space: 503 REPLICA_ERR_STORAGE_FAILED, reads served, /health 503 (a supervisor may restart it), and writes again once a retried commit goes through', async () => {
    mount = mountTmpfs(3 * MiB);
    // A real failed commit (the tmpfs fills up) on a filesystem that reports plenty of
    // room: what an I/O error of a failing disk looks like to the node.
    const store = Store.open({ path: mount.dir, nodeName: 'standalone', pruneIntervalMs: 0, spaceCheckIntervalMs: 100, statFs: () => ({ freeBytes: 500 * MiB, totalBytes: 1024 * MiB }) });
    const app = buildApp(testConfig(), { store });
    try {
      const acked: string[] = [];
      let refused: { statusCode: number; body: Answer['body'] } | undefined;
      for (let i = 0; i < 20_000 && !refused; i++) {
        const batch = await Promise.all(Array.from({ length: 16 }, (_, j) => app.inject({ method: 'POST', url: '/items', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ id: `a-${i}-${j}`, pad: 'x'.repeat(380) }) })));
        for (const [j, r] of batch.entries()) {
          if (r.statusCode === 201) acked.push(`a-${i}-${j}`);
          else refused ??= { statusCode: r.statusCode, body: r.json() };
        }
      }
      expect(refused).toMatchObject({ statusCode: 503, body: { code: 'REPLICA_ERR_STORAGE_FAILED' } });
      const health = await app.inject({ url: '/health' });
      expect([health.statusCode, health.json().code]).toEqual([503, 'REPLICA_ERR_UNAVAILABLE']);
      const ready = await app.inject({ url: '/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().reason).toMatch(/storage failed/);
      expect((await app.inject({ url: `/items/${acked[0]}` })).statusCode).toBe(200);
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/^replica_storage_state\{state="failed"\} 1$/m);
      // the cause goes away (here: room again): a retried commit goes through, writes resume
      mount.resize(64 * MiB);
      const t0 = Date.now();
      while (store.storage().state !== 'writable') {
        if (Date.now() - t0 > 10_000) throw new Error(`still ${store.storage().state} 10 s after the cause went away`);
        await sleep(50);
      }
      const late = await app.inject({ method: 'POST', url: '/items', headers: { 'content-type': 'application/json' }, payload: '{"id":"late"}' });
      expect(late.statusCode).toBe(201);
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
      for (const id of acked) expect((await app.inject({ url: `/items/${id}` })).statusCode, id).toBe(200);
    } finally {
      await app.close();
      await store.close();
    }
  });
});

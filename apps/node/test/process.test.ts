import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { MAIN, openStore, startNode, tempDir, type NodeProcess } from './helpers.js';

// The node as users run it: `node apps/node/dist/main.js`, configured by env.
describe('node process', () => {
  const procs: NodeProcess[] = [];
  const dirs: ReturnType<typeof tempDir>[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      p.kill('SIGKILL');
      await p.exited;
    }
    for (const d of dirs.splice(0)) d.remove();
  });
  const dir = () => {
    const d = tempDir();
    dirs.push(d);
    return d.path;
  };

  it('refuses a bad configuration with every problem and exit code 2', () => {
    const r = spawnSync(process.execPath, [MAIN], {
      env: { PATH: process.env['PATH'] ?? '', PORT: 'eighty', REPLICATION_TRANSPORT: 'smoke-signals', WRITE_DURABILITY: 'yes' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration/);
    expect(r.stderr).toMatch(/PORT/);
    expect(r.stderr).toMatch(/REPLICATION_TRANSPORT/);
    expect(r.stderr).toMatch(/WRITE_DURABILITY/);
  });

  it('serves HTTP, keeps data across restarts, and on SIGTERM finishes in-flight writes before exiting 0', async () => {
    const data = dir();
    const node = await startNode({ DATA_DIR: data, NODE_NAME: 'p1' });
    procs.push(node);
    const post = (id: string) =>
      fetch(`${node.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, v: 'x'.repeat(300) }) });
    expect((await post('first')).status).toBe(201);

    // A burst of writes, then SIGTERM while they are in flight.
    const burst = Array.from({ length: 200 }, (_, i) => post(`b${i}`).then((r) => [`b${i}`, r.status] as const, () => [`b${i}`, 0] as const));
    await new Promise((r) => setTimeout(r, 5));
    node.kill('SIGTERM');
    const results = await Promise.all(burst);
    const code = await node.exited;
    expect(code, node.output().slice(-3000)).toBe(0);
    expect(node.output()).toMatch(/"msg":"stopped"/);

    // Every write that was answered 201 is on disk; none answered with a 5xx other than 503.
    const acked = results.filter(([, s]) => s === 201).map(([id]) => id);
    expect(results.every(([, s]) => s === 201 || s === 503 || s === 0)).toBe(true);
    const store = openStore(data, 'p1');
    try {
      for (const id of ['first', ...acked]) expect(store.get('items', id), id).toBeDefined();
      expect(store.verify()).toEqual([]);
    } finally {
      await store.close();
    }

    const again = await startNode({ DATA_DIR: data, NODE_NAME: 'p1' });
    procs.push(again);
    const got = await fetch(`${again.url}/items/first`);
    expect(got.status).toBe(200);
    expect(((await got.json()) as { id: string }).id).toBe('first');
    expect((await fetch(`${again.url}/health`)).status).toBe(200);
  });
});

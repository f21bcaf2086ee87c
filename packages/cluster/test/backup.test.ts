// An online backup of a node taken under writes, restored into that node: it holds every
// write acknowledged before the backup at once, and catches up the rest from its peers,
// its own later writes included.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Store } from '@replica/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { NODE_MAIN, startCluster, type Cluster } from '../src/index.js';
import { convergedAndComplete, cursorsOf, readyOnlyWhenCaughtUp, tailLogs, until, writeLoad } from './load.js';

const run = promisify(execFile);

describe.each(['plexus', 'nats'] as const)('backup and restore of a %s node', (transport) => {
  let cluster: Cluster | undefined;
  let out = '';
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('a backup taken under writes restores into a node that holds what was acknowledged before it and catches up the rest', async () => {
    cluster = await startCluster({ nodes: 3, transport });
    const c = cluster;
    const n3 = c.nodes[2]!;
    // writes on every node, n3 included, before, during and after the backup; none to n3
    // from its restore until it is ready (routed by /ready, as docs/operations.md says)
    let writing = true;
    let targets = [...c.nodes];
    const load = writeLoad(c, 'b', 2400, 12, () => targets, () => writing);
    await new Promise((r) => setTimeout(r, 500));
    const before = await writeLoad(c, 'pre', 60, 6);
    expect(before.failed).toBe(0);
    out = mkdtempSync(join(tmpdir(), 'replica-backup-'));
    const { stdout } = await run(process.execPath, [NODE_MAIN, 'backup', '--data-dir', n3.dataDir, '--out', join(out, 'copy')]);
    expect(JSON.parse(stdout)).toMatchObject({ out: join(out, 'copy'), bytes: expect.any(Number) });
    // the copy is a consistent store by itself: every write n3 acknowledged before it is in it
    const copy = Store.open({ path: join(out, 'copy'), nodeName: n3.name, pruneIntervalMs: 0 });
    try {
      expect(copy.verify()).toEqual([]);
      for (const id of before.acked.filter((_, i) => i % 3 === 2)) expect(copy.get('items', id), id).toBeDefined();
    } finally {
      await copy.close();
    }
    await new Promise((r) => setTimeout(r, 500));
    // n3 dies; its data is replaced by the backup, losing what it wrote and applied since.
    // What n3 acknowledged after the backup survives only where it replicated: writes go
    // to n1 and n2 from here, and n3 dies once they hold all of its own.
    targets = c.nodes.slice(0, 2);
    await new Promise((r) => setTimeout(r, 300)); // writes already sent to n3 finish
    const own = async () => (await cursorsOf(n3.url))[n3.name] ?? 0;
    await until('n1 and n2 hold every write of n3', 20_000, async () => {
      const mine = await own();
      for (const n of c.nodes.slice(0, 2)) if (((await cursorsOf(n.url))[n3.name] ?? 0) < mine) return false;
      return true;
    });
    await c.kill(2, 'SIGKILL');
    rmSync(n3.dataDir, { recursive: true, force: true });
    mkdirSync(n3.dataDir, { recursive: true });
    copyFileSync(join(out, 'copy', 'data.mdb'), join(n3.dataDir, 'data.mdb'));
    // what the live members held: n3 answers /ready only once it applied that, and must
    // take no write before it has its own lost ones back (they would reuse their numbers)
    const held = await Promise.all(c.nodes.slice(0, 2).map((n) => cursorsOf(n.url)));
    const peersHeld: Record<string, number> = {};
    for (const cur of held) for (const [origin, n] of Object.entries(cur)) peersHeld[origin] = Math.max(peersHeld[origin] ?? 0, n);
    await c.restart(2);
    await readyOnlyWhenCaughtUp(c.nodes[2]!, peersHeld);
    await c.waitConnected();
    targets = [...c.nodes];
    await new Promise((r) => setTimeout(r, 300));
    writing = false;
    const { acked } = await load;
    const after = await writeLoad(c, 'after', 150, 6);
    expect(after.failed, tailLogs(c)).toBe(0);
    await convergedAndComplete(c, [...before.acked, ...acked, ...after.acked], () => tailLogs(c));
  });
});

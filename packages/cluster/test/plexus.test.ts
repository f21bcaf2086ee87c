import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../src/index.js';

interface Status {
  tables: Record<string, { count: number; digest: string }>;
  replication: { peers: { name: string; connected: boolean }[] };
}
const status = async (url: string) => (await (await fetch(`${url}/status`)).json()) as Status;

/** POSTs `count` records spread over the nodes, `concurrency` at a time; returns the ids answered 201. */
async function writeLoad(cluster: Cluster, prefix: string, count: number, concurrency: number): Promise<{ acked: string[]; failed: number }> {
  const acked: string[] = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const n = next++;
      const node = cluster.nodes[n % cluster.nodes.length];
      const id = `${prefix}-${n}`;
      try {
        const r = await fetch(`${node?.url}/items`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id, n, pad: 'x'.repeat(300) }),
          signal: AbortSignal.timeout(10_000),
        });
        if (r.status === 201) acked.push(id);
        else failed++;
      } catch {
        failed++; // that node is down: the write was not acknowledged
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { acked, failed };
}

describe('a 3-process plexus cluster', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
  });

  it('loses no acknowledged write when a node is killed with SIGKILL and restarted under load', async () => {
    cluster = await startCluster({ nodes: 3, transport: 'plexus' });
    const c = cluster;
    const logs = () => c.nodes.map((n) => `--- ${n.name}\n${readFileSync(n.logFile, 'utf8').split('\n').slice(-15).join('\n')}`).join('\n');

    const load = writeLoad(c, 'w', 3000, 24);
    await new Promise((r) => setTimeout(r, 400));
    await c.kill(2, 'SIGKILL'); // n3 dies mid-stream, with writes in flight to and from it
    await new Promise((r) => setTimeout(r, 500));
    await c.restart(2);
    const { acked, failed } = await load;
    const after = await writeLoad(c, 'after', 300, 12);
    expect(after.failed, logs()).toBe(0);
    const all = [...acked, ...after.acked];
    expect(acked.length).toBeGreaterThan(1500);
    expect(failed).toBeLessThan(1500);

    // Converged: same count and digest everywhere, and every link back up.
    const deadline = Date.now() + 30_000;
    let digests: string[] = [];
    for (;;) {
      const s = await Promise.all(c.nodes.map((n) => status(n.url)));
      digests = s.map((x) => JSON.stringify(x.tables));
      if (new Set(digests).size === 1 && s.every((x) => x.replication.peers.every((p) => p.connected))) break;
      if (Date.now() > deadline) throw new Error(`no convergence:\n${digests.join('\n')}\n${logs()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // Every acknowledged write is on every node.
    for (const node of c.nodes) {
      const missing: string[] = [];
      for (let i = 0; i < all.length; i += 50) {
        const got = await Promise.all(all.slice(i, i + 50).map((id) => fetch(`${node.url}/items/${id}`).then((r) => [id, r.status] as const)));
        for (const [id, st] of got) if (st !== 200) missing.push(id);
      }
      expect(missing, `${node.name} misses acknowledged writes`).toEqual([]);
    }
    const counts = JSON.parse(digests[0] as string) as Status['tables'];
    expect(counts['items']?.count).toBeGreaterThanOrEqual(all.length);
  });
});

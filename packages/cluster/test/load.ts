import { expect } from 'vitest';
import type { Cluster } from '../src/index.js';

export interface Status {
  tables: Record<string, { count: number; digest: string }>;
  replication: { peers: { name: string; connected: boolean }[] };
}
export const status = async (url: string) => (await (await fetch(`${url}/status`)).json()) as Status;

/**
 * POSTs `count` records spread over the nodes (write n goes to node n mod the node count,
 * of `targets()` when given), `concurrency` at a time, or fewer once `more()` turns
 * false; returns the ids answered 201.
 */
export async function writeLoad(
  cluster: Cluster,
  prefix: string,
  count: number,
  concurrency: number,
  targets: () => readonly Cluster['nodes'][number][] = () => cluster.nodes,
  more: () => boolean = () => true,
): Promise<{ acked: string[]; failed: number }> {
  const acked: string[] = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < count && more()) {
      const n = next++;
      const nodes = targets();
      const node = nodes[n % nodes.length];
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


/**
 * Waits (up to 40 s) until every node shows the same tables, counts and digests, holds
 * at least `ids.length` items and sees all its peers connected; then checks that every
 * id in `ids` is on every node.
 */
export async function convergedAndComplete(c: Cluster, ids: readonly string[], logs: () => string): Promise<void> {
  const deadline = Date.now() + 40_000;
  let digests: string[] = [];
  for (;;) {
    const s = await Promise.all(c.nodes.map((n) => status(n.url)));
    digests = s.map((x) => JSON.stringify(x.tables));
    const linksUp = s.every((x) => x.replication.peers.every((p) => p.connected));
    if (new Set(digests).size === 1 && linksUp && (s[0]?.tables['items']?.count ?? 0) >= ids.length) break;
    if (Date.now() > deadline) throw new Error(`no convergence:\n${digests.join('\n')}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const node of c.nodes) {
    const missing: string[] = [];
    for (let i = 0; i < ids.length; i += 50) {
      const got = await Promise.all(ids.slice(i, i + 50).map((id) => fetch(`${node.url}/items/${id}`).then((r) => [id, r.status] as const)));
      for (const [id, st] of got) if (st !== 200) missing.push(id);
    }
    expect(missing, `${node.name} misses acknowledged writes`).toEqual([]);
  }
}

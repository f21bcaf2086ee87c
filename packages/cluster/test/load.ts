import type { Cluster } from '../src/index.js';

export interface Status {
  tables: Record<string, { count: number; digest: string }>;
  replication: { peers: { name: string; connected: boolean }[] };
}
export const status = async (url: string) => (await (await fetch(`${url}/status`)).json()) as Status;

/** POSTs `count` records spread over the nodes, `concurrency` at a time; returns the ids answered 201. */
export async function writeLoad(cluster: Cluster, prefix: string, count: number, concurrency: number): Promise<{ acked: string[]; failed: number }> {
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


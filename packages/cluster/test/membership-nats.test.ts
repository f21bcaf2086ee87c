import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsServer } from '@replica/transport-nats';
import { startCluster, type Cluster, type ClusterNode } from '../src/index.js';
import { convergedAndComplete, cursorsOf, membersOf, readyOnlyWhenCaughtUp, sleep, status, tailLogs, until, writeLoad } from './load.js';

/** The streams a nats-server stores, each with its consumers' names (its /jsz; each node's stream is placed on its own server). */
async function streamsOn(server: NatsServer): Promise<Record<string, string[]>> {
  const r = await fetch(`${server.monitorUrl}/jsz?streams=true&consumers=true`);
  const body = (await r.json()) as { account_details?: { stream_detail?: { name: string; consumer_detail?: { name: string }[] }[] }[] };
  const out: Record<string, string[]> = {};
  for (const a of body.account_details ?? []) for (const s of a.stream_detail ?? []) out[s.name] = (s.consumer_detail ?? []).map((c) => c.name).sort();
  return out;
}

describe('a nats cluster changes its members at runtime', () => {
  let cluster: Cluster;
  const logs = () => tailLogs(cluster);
  const members = (node: ClusterNode) => membersOf(cluster, node);

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, transport: 'nats' });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('grows from 3 to 5 nodes under writes, each on a nats-server joined by route gossip, ready only once caught up', async () => {
    const c = cluster;
    const preload = await writeLoad(c, 'pre', 1200, 16);
    expect(preload.failed).toBe(0);
    // Writes run on every node, each new one from when it is ready, while the cluster grows.
    const targets = c.nodes.slice();
    // Writes go on until both new nodes are ready (bounded by the count).
    let grown = false;
    const load = writeLoad(c, 'grow', 20_000, 12, () => targets, () => !grown);

    const before4 = await cursorsOf((c.nodes[0] as ClusterNode).url);
    const n4 = await c.add({ seed: 0 });
    const waits4 = await readyOnlyWhenCaughtUp(n4, before4);
    targets.push(n4);

    // n5's server joins through n4's, itself new.
    const before5 = await cursorsOf(n4.url);
    const n5 = await c.add({ seed: 3 });
    const waits5 = await readyOnlyWhenCaughtUp(n5, before5);
    targets.push(n5);
    await sleep(500); // and reach n5 too
    grown = true;
    const { acked, failed } = await load;
    expect(failed, logs()).toBe(0);
    console.log(`membership (nats): grew 3 → 5 under ${acked.length} acknowledged writes; /ready answered 503 ${waits4} and ${waits5} times first`);

    await c.waitConnected(20_000); // every node consumes the 4 others' streams
    for (const n of c.nodes) {
      const s = await status(n.url);
      expect(s.replication.peers.map((p) => p.name).sort(), n.name).toEqual(['n1', 'n2', 'n3', 'n4', 'n5'].filter((x) => x !== n.name));
    }
    // n5's server was routed to every other server; its stream sits on it.
    expect(Object.keys(await streamsOn(c.natsServers[4] as NatsServer))).toEqual(['REPLICA_n5']);
    const list = await members(n5);
    expect(list.map((m) => [m.name, m.state, m.connected])).toEqual(['n1', 'n2', 'n3', 'n4', 'n5'].map((x) => [x, 'active', true]));
    await convergedAndComplete(c, [...preload.acked, ...acked], logs);
  });

  it('removes a node under writes: gone from every peer list within seconds, its acknowledged writes kept, its consumers and then its stream deleted', async () => {
    const c = cluster;
    const n5 = c.nodes[4] as ClusterNode;
    const load = writeLoad(c, 'remove', 2000, 12);
    await sleep(500);
    // n5 takes writes until the moment it learns of its removal.
    await c.remove(4, { via: 0 });
    const removedAt = Date.now();
    // Consumers by and of n5 go everywhere, then n5's stream once every member applied it.
    let deletedMs = 0;
    const deleted = until('n5\'s consumers and stream deleted', 30_000, async () => {
      for (const [i, server] of c.natsServers.entries()) {
        const streams = await streamsOn(server);
        if (i === 4 && 'REPLICA_n5' in streams) return false;
        for (const consumers of Object.values(streams)) if (consumers.includes('n5')) return false;
      }
      deletedMs = Date.now() - removedAt;
      return true;
    });
    const remaining = c.nodes.slice(0, 4);
    await until('n5 gone from every member\'s peers', 15_000, async () => {
      for (const n of remaining) if ((await status(n.url)).replication.peers.some((p) => p.name === 'n5')) return false;
      return (await status(n5.url)).replication.peers.length === 0;
    });
    const goneMs = Date.now() - removedAt;
    expect(goneMs).toBeLessThan(10_000);
    const { acked } = await load;

    // A removed node refuses writes; it is no longer ready.
    const late = await fetch(`${n5.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"late"}' });
    expect(late.status).toBe(503);
    expect((await fetch(`${n5.url}/ready`)).status).toBe(503);

    // Every write acknowledged (by n5 too) is on every member.
    await convergedAndComplete({ ...c, nodes: remaining } as Cluster, acked, logs);
    const fromN5 = acked.filter((id) => Number(id.split('-')[1]) % 5 === 4); // write n went to node n mod 5
    expect(fromN5.length).toBeGreaterThan(0);

    await deleted;
    for (const [i, server] of c.natsServers.slice(0, 4).entries()) expect(await streamsOn(server)).toEqual({ [`REPLICA_n${i + 1}`]: ['n1', 'n2', 'n3', 'n4'].filter((x) => x !== `n${i + 1}`) });
    console.log(`membership (nats): n5 left every peer list ${goneMs} ms after its removal; its consumers and stream were deleted after ${deletedMs} ms`);

    const list = await members(c.nodes[0] as ClusterNode);
    expect(list.find((m) => m.name === 'n5')?.state).toBe('removed');
    // Writes go on among the members, and the removal survives their restart.
    const after = await writeLoad({ ...c, nodes: remaining } as Cluster, 'after', 200, 8);
    expect(after.failed).toBe(0);
    await c.kill(1, 'SIGTERM');
    await c.restart(1);
    await c.waitConnected(20_000);
    expect((await status((c.nodes[1] as ClusterNode).url)).replication.peers.map((p) => p.name).sort()).toEqual(['n1', 'n3', 'n4']);
    await convergedAndComplete({ ...c, nodes: remaining } as Cluster, [...acked, ...after.acked], logs);
  });
});

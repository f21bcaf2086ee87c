import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHostPort } from '@replica/transport-api';
import { startCluster, type Cluster, type ClusterNode } from '../src/index.js';
import { convergedAndComplete, membersOf, readyOnlyWhenCaughtUp, sleep, status, tailLogs, until, writeLoad, type ListedMember } from './load.js';


interface FullStatus {
  cursors: Record<string, number>;
  replication: { peers: { name: string; connected: boolean; info?: Record<string, string> }[]; refused: Record<string, number> };
}

const fullStatus = async (url: string) => (await (await fetch(`${url}/status`)).json()) as FullStatus;

/** Tries a TLS connection to `address` with `name`'s certificate; resolves once the peer closed it (a refused one closes at once). */
function presentCertificate(c: Cluster, name: string, address: string): Promise<void> {
  const { host, port } = parseHostPort(address) as { host: string; port: number };
  const certs = join(c.dir, 'certs');
  return new Promise((resolve) => {
    const socket = connect({ host, port, ca: readFileSync(join(certs, 'ca.crt')), cert: readFileSync(join(certs, `${name}.crt`)), key: readFileSync(join(certs, `${name}.key`)), checkServerIdentity: () => undefined });
    socket.on('error', () => {});
    socket.once('close', () => resolve());
    setTimeout(() => socket.destroy(), 5000).unref();
  });
}

describe('a plexus cluster changes its members at runtime', () => {
  let cluster: Cluster;
  const logs = () => tailLogs(cluster);
  const members = (node: ClusterNode) => membersOf(cluster, node);

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, transport: 'plexus' });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('grows from 3 to 5 nodes under writes, each new node given one seed, ready only once caught up', async () => {
    const c = cluster;
    const preload = await writeLoad(c, 'pre', 3000, 24);
    expect(preload.failed).toBe(0);
    // Writes run on every node, each new one from when it is ready, while the cluster grows.
    const targets = c.nodes.slice();
    const load = writeLoad(c, 'grow', 4000, 16, () => targets);

    const before4 = (await fullStatus((c.nodes[0] as ClusterNode).url)).cursors;
    const n4 = await c.add({ seed: 0 });
    const waits4 = await readyOnlyWhenCaughtUp(n4, before4);
    targets.push(n4);

    // n5's only seed is n4, itself new: it learns n1…n3 from the replicated member list.
    const before5 = (await fullStatus(n4.url)).cursors;
    const n5 = await c.add({ seed: 3 });
    const waits5 = await readyOnlyWhenCaughtUp(n5, before5);
    targets.push(n5);
    const { acked, failed } = await load;
    expect(failed, logs()).toBe(0);
    console.log(`membership: grew 3 → 5 under ${acked.length} acknowledged writes; /ready answered 503 ${waits4} and ${waits5} times first`);

    await c.waitConnected(20_000); // full mesh: every node linked to the 4 others
    for (const n of c.nodes) {
      const s = await status(n.url);
      expect(s.replication.peers.map((p) => p.name).sort(), n.name).toEqual(['n1', 'n2', 'n3', 'n4', 'n5'].filter((x) => x !== n.name));
    }
    const list = await members(n5);
    expect(list.map((m) => [m.name, m.state, m.connected])).toEqual(['n1', 'n2', 'n3', 'n4', 'n5'].map((x) => [x, 'active', true]));
    await convergedAndComplete(c, [...preload.acked, ...acked], logs);
  });

  it('removes a node under writes: disconnected everywhere within seconds, its acknowledged writes kept, its certificate refused also after every member restarts', async () => {
    const c = cluster;
    const n1 = c.nodes[0] as ClusterNode;
    const n5 = c.nodes[4] as ClusterNode;
    const load = writeLoad(c, 'remove', 3000, 16);
    await sleep(500);
    // n5 takes writes until the moment it learns of its removal.
    await c.remove(4, { via: 0 });
    const removedAt = Date.now();
    const { acked } = await load;
    const remaining = c.nodes.slice(0, 4);
    // Members take n5's last writes as long as they keep arriving (removalDrainMs idle),
    // so how long this takes depends on how far behind n5 was; it must end, though.
    await until('n5 disconnected from every member', 30_000, async () => {
      for (const n of remaining) if ((await status(n.url)).replication.peers.some((p) => p.name === 'n5')) return false;
      return (await status(n5.url)).replication.peers.every((p) => !p.connected);
    });
    const tookMs = Date.now() - removedAt;

    // A removed node refuses writes (they would replicate to nobody); it is no longer ready.
    const late = await fetch(`${n5.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"late"}' });
    expect(late.status).toBe(503);
    expect((await fetch(`${n5.url}/ready`)).status).toBe(503);

    // Every write acknowledged (by n5 too) is on every member; n5's writes stay.
    const members4 = { ...c, nodes: remaining } as Cluster;
    await convergedAndComplete(members4, acked, logs);
    const fromN5 = acked.filter((id) => Number(id.split('-')[1]) % 5 === 4); // write n went to node n mod 5
    expect(fromN5.length).toBeGreaterThan(0);

    const list = await members(n1);
    const record = list.find((m) => m.name === 'n5') as ListedMember;
    expect(record.state).toBe('removed');
    expect(record.revoked).toHaveLength(1); // the fingerprint n1 saw

    // Its certificate is refused by every member, counted under `revoked`; again after every member restarted.
    const refusedRevoked = async (n: ClusterNode) => (await fullStatus(n.url)).replication.refused['revoked'] ?? 0;
    for (const round of ['before', 'after'] as const) {
      if (round === 'after') {
        for (const i of [0, 1, 2, 3]) await c.kill(i, 'SIGTERM');
        for (const i of [0, 1, 2, 3]) await c.restart(i);
        await c.waitConnected(20_000);
      }
      for (const m of list.filter((x) => x.state === 'active')) {
        const node = remaining.find((n) => n.name === m.name) as ClusterNode;
        const was = await refusedRevoked(node);
        await presentCertificate(c, 'n5', m.address);
        await until(`${m.name} counts n5's certificate as revoked (${round} restart)`, 5000, async () => (await refusedRevoked(node)) > was);
      }
    }
    const after = await members(n1);
    expect(after.find((m) => m.name === 'n5')?.state).toBe('removed');
    for (const n of remaining) expect((await status(n.url)).replication.peers.map((p) => p.name)).not.toContain('n5');
    console.log(`membership (plexus): n5 removed under ${acked.length} acknowledged writes (${fromN5.length} through n5); disconnected from every member ${tookMs} ms after the removal`);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '@replica/storage';
import type { Member } from '@replica/transport-api';
import { converged, eventually, suiteNode } from '@replica/transport-api/testing';
import { joinNatsCluster, natsTransport, routesOf, startNatsCluster, type NatsServer } from '../src/index.js';
import { natsCluster, type NatsNode, type NatsTestCluster } from './helpers.js';

const active = (...names: string[]): Member[] => names.map((name) => ({ name, address: '', state: 'active', revoked: [] }));
const removed = (name: string): Member => ({ name, address: '', state: 'removed', revoked: [] });

/** The names of the streams and of the consumers on each, as the broker lists them. */
async function brokerView(url: string): Promise<Record<string, string[]>> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await nc.jetstreamManager();
    const out: Record<string, string[]> = {};
    for await (const si of jsm.streams.list()) {
      const consumers: string[] = [];
      for await (const ci of jsm.consumers.list(si.config.name)) consumers.push(ci.name);
      out[si.config.name] = consumers.sort();
    }
    return out;
  } finally {
    await nc.close();
  }
}

describe('nats-server: a new server joins a running cluster', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  it('routes only to one seed, is routed to every server by gossip, and takes a stream placed by its tag', async () => {
    const root = mkdtempSync(join(tmpdir(), 'replica-nats-join-'));
    stops.push(async () => rmSync(root, { recursive: true, force: true }));
    const cluster = await startNatsCluster({ names: ['s0', 's1', 's2'], dir: join(root, 'nats') });
    stops.push(cluster.stop);
    const seed = cluster.servers[0] as NatsServer;
    const joined = await joinNatsCluster({ name: 's3', seeds: [seed.routeUrl as string], dir: join(root, 'nats'), expectRoutes: 3 });
    stops.push(() => joined.stop());
    const ids = await Promise.all(cluster.servers.map(async (s) => (await routesOf(s)).id));
    const mine = await routesOf(joined);
    expect(mine.routedTo).toEqual(ids.slice().sort());
    for (const s of cluster.servers) expect((await routesOf(s)).routedTo, s.name).toContain(mine.id);

    // A stream placed on the new server by its tag, written and read through an old server.
    let nc: NatsConnection | undefined;
    try {
      nc = await connect({ servers: seed.url });
      const jsm = await nc.jetstreamManager();
      const si = await jsm.streams.add({ name: 'JOINED', subjects: ['joined.>'], placement: { cluster: 'replica', tags: ['s3'] } });
      expect(si.cluster?.leader).toBe('s3');
      const js = nc.jetstream();
      for (let i = 0; i < 5; i++) await js.publish('joined.x', new TextEncoder().encode(String(i)));
      expect((await jsm.streams.info('JOINED')).state.messages).toBe(5);
    } finally {
      await nc?.close();
    }
  });

  it("joins while the meta leader's server is down: it waits out the election and is healthy under the new leader", async () => {
    const root = mkdtempSync(join(tmpdir(), 'replica-nats-join-'));
    stops.push(async () => rmSync(root, { recursive: true, force: true }));
    const cluster = await startNatsCluster({ names: ['s0', 's1', 's2'], dir: join(root, 'nats') });
    stops.push(cluster.stop);
    const metaLeader = async (s: NatsServer): Promise<string | undefined> =>
      ((await (await fetch(`${s.monitorUrl}/jsz`)).json()) as { meta_cluster?: { leader?: string } }).meta_cluster?.leader || undefined;
    let leader: string | undefined;
    for (const deadline = Date.now() + 10_000; !(leader = await metaLeader(cluster.servers[0] as NatsServer)); ) {
      if (Date.now() > deadline) throw new Error('the cluster elected no meta leader in 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const victim = cluster.servers.find((s) => s.name === leader) as NatsServer;
    const seed = cluster.servers.find((s) => s !== victim) as NatsServer;
    await victim.stop('SIGKILL');
    // No meta leader until the two left elect one (6-10 s here, sometimes over 20 s):
    // the join's default deadline covers it.
    const joined = await joinNatsCluster({ name: 's3', seeds: [seed.routeUrl as string], dir: join(root, 'nats'), expectRoutes: 2 });
    stops.push(() => joined.stop());
    expect((await fetch(`${joined.monitorUrl}/healthz`)).status).toBe(200);
    const now = await metaLeader(joined);
    expect(now, 'a new meta leader').toBeDefined();
    expect(now).not.toBe(victim.name);
  }, 120_000); // the election took up to 23 s in 20 tries here; the join may take 60 s

});

describe('nats transport: members added and removed at runtime', () => {
  let c: NatsTestCluster | undefined;
  let extra: { node: NatsNode; server: NatsServer } | undefined;
  afterEach(async () => {
    await extra?.node.transport.stop();
    await extra?.node.store.close();
    await extra?.server.stop();
    extra = undefined;
    await c?.teardown();
    c = undefined;
  });

  /** Starts node `name` on a new nats-server joined to the cluster (n0's server as its seed). */
  async function joinNode(cluster: NatsTestCluster, name: string): Promise<NatsNode> {
    const server = await joinNatsCluster({ name, seeds: [cluster.servers[0]?.routeUrl as string], dir: join(cluster.root, 'nats'), expectRoutes: cluster.servers.length });
    const store = Store.open({ path: join(cluster.root, name), nodeName: name, pruneIntervalMs: 0 });
    const transport = natsTransport({ servers: server.url, mode: 'batched', placement: { cluster: 'replica', tag: name }, discoverIntervalMs: 200 });
    const node = suiteNode(store, transport);
    extra = { node, server };
    return node;
  }

  it('a node on a joined server catches up, holds tells what it must reach, and the others consume its stream without a restart', async () => {
    c = await natsCluster(3, 'batched');
    const cl = c;
    const all = active('n0', 'n1', 'n2', 'n3');
    for (const n of cl.nodes) n.transport.setMembers?.(all);
    await Promise.all(Array.from({ length: 600 }, (_, i) => cl.nodes[i % 3]?.put('t', { id: `pre-${i}` })));
    await converged(cl.nodes, 15_000);
    const n3 = await joinNode(cl, 'n3');
    n3.transport.setMembers?.(all);
    await n3.transport.start(n3.store);

    // holds: per peer, the last originSeq its stream held when the consumer started; in
    // batched mode one message carries many entries, so this is the last ENTRY's originSeq.
    await eventually(() => n3.transport.status().peers.filter((p) => p.holds).length === 3, 10_000, () => JSON.stringify(n3.transport.status().peers));
    const peers = n3.transport.status().peers;
    expect(peers.map((p) => p.name).sort()).toEqual(['n0', 'n1', 'n2']);
    for (const p of peers) expect(p.holds, p.name).toEqual({ [p.name]: 200 });
    await converged([...cl.nodes, n3], 15_000);
    expect(n3.cursors()).toMatchObject({ n0: 200, n1: 200, n2: 200 });

    // The old nodes find n3's stream on their own (discovery every 200 ms).
    await n3.put('t', { id: 'from-n3' });
    await converged([...cl.nodes, n3], 15_000);
    for (const n of cl.nodes) expect(n.get('t', 'from-n3'), n.name).toBeDefined();
    for (const n of cl.nodes) expect(n.transport.peerNames().slice().sort(), n.name).toEqual(['n0', 'n1', 'n2', 'n3'].filter((x) => x !== n.name));
  });

  it('a removed node leaves every peer list, its writes stay, its consumers go everywhere, and its stream goes once every member applied it', async () => {
    c = await natsCluster(3, 'batched', () => ({ removalDrainMs: 3000 }));
    const cl = c;
    const all = active('n0', 'n1', 'n2');
    for (const n of cl.nodes) n.transport.setMembers?.(all);
    await Promise.all(Array.from({ length: 300 }, (_, i) => cl.nodes[i % 3]?.put('t', { id: `pre-${i}` })));
    await converged(cl.nodes, 15_000);
    // n2's last writes, committed just before its removal is known anywhere.
    await Promise.all(Array.from({ length: 100 }, (_, i) => cl.nodes[2]?.put('t', { id: `last-n2-${i}` })));
    const list = [...active('n0', 'n1'), removed('n2')];
    const t0 = Date.now();
    for (const n of cl.nodes) n.transport.setMembers?.(list);
    const [n0, n1, n2] = cl.nodes as [NatsNode, NatsNode, NatsNode];
    // Gone from the peers (and from X-Replicate-Confirm counts) at once; n2 consumes nothing.
    expect(n0.transport.peerNames()).toEqual(['n1']);
    expect(n1.transport.peerNames()).toEqual(['n0']);
    expect(n2.transport.status().peers).toEqual([]);

    // Every write n2 committed reaches the others through its stream, though it is no peer.
    await eventually(() => n0.cursors()['n2'] === 200 && n1.cursors()['n2'] === 200, 15_000, () => JSON.stringify([n0.cursors(), n1.cursors()]));
    await converged([n0, n1], 15_000);
    for (let i = 0; i < 100; i++) expect(n1.get('t', `last-n2-${i}`)).toBeDefined();

    // n2's stream goes (n0 is the lowest-named active member), and every consumer of or by n2.
    const url = cl.servers[0]?.url as string;
    let view: Record<string, string[]> = {};
    const deadline = Date.now() + 15_000;
    for (;;) {
      view = await brokerView(url);
      const done = !('REPLICA_n2' in view) && !view['REPLICA_n0']?.includes('n2') && !view['REPLICA_n1']?.includes('n2');
      if (done) break;
      if (Date.now() > deadline) throw new Error(`n2's stream or consumers still there: ${JSON.stringify(view)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`nats removal: n2's stream and consumers gone ${Date.now() - t0} ms after the list changed`);
    expect(view).toEqual({ REPLICA_n0: ['n1'], REPLICA_n1: ['n0'] });

    // Writes go on between the members; waitForReplicas counts only them.
    const w = await n0.put('t', { id: 'after' });
    expect(await n0.transport.waitForReplicas?.(w.seq, 1, 10_000)).toBe(1);
    expect(await n0.transport.waitForReplicas?.(w.seq, 2, 500)).toBe(1);

    // A node added after n2's stream is gone gets n2's writes by a merge resync from a
    // member, and only then has caught up with what its peers hold of n2.
    const n3 = await joinNode(cl, 'n3');
    n3.transport.setMembers?.([...list, ...active('n3')]);
    await n3.transport.start(n3.store);
    await eventually(() => n3.cursors()['n2'] === 200, 15_000, () => JSON.stringify(n3.cursors()));
    await converged([n0, n1, n3], 15_000);
    for (let i = 0; i < 100; i++) expect(n3.get('t', `last-n2-${i}`)).toBeDefined();
    await eventually(() => n3.transport.status().peers.every((p) => p.holds?.['n2'] === 200), 10_000, () => JSON.stringify(n3.transport.status().peers));
    expect(n3.transport.peerNames().slice().sort()).toEqual(['n0', 'n1']);
  });

  it('keeps a removed member\'s stream while an active member has not applied it, and a restarted member never consumes it again', async () => {
    c = await natsCluster(3, 'per-write', () => ({ removalDrainMs: 1000 }));
    const cl = c;
    for (const n of cl.nodes) n.transport.setMembers?.(active('n0', 'n1', 'n2'));
    await Promise.all(Array.from({ length: 30 }, (_, i) => cl.nodes[i % 3]?.put('t', { id: `k${i}` })));
    await converged(cl.nodes, 15_000);
    // n9 is an active member that never started: it never announces applying n2's stream.
    const list = [...active('n0', 'n1', 'n9'), removed('n2')];
    for (const n of cl.nodes) n.transport.setMembers?.(list);
    const url = cl.servers[0]?.url as string;
    const settled = JSON.stringify({ REPLICA_n0: ['n1'], REPLICA_n1: ['n0'], REPLICA_n2: [] });
    for (const deadline = Date.now() + 15_000; ; ) {
      const view = JSON.stringify(await brokerView(url));
      if (view === settled) break;
      if (Date.now() > deadline) throw new Error(`consumers not settled: ${view}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // The list is handed over before start, as the app does: n1 never consumes n2's stream again.
    await cl.stopNode(1);
    const restarted = cl.startNode(1);
    cl.nodes[1]?.transport.setMembers?.(list);
    await restarted;
    const n1 = cl.nodes[1] as NatsNode;
    await new Promise((r) => setTimeout(r, 1500)); // several discovery rounds (every 200 ms) and removal checks (every 500 ms)
    expect(n1.transport.peerNames()).toEqual(['n0']);
    expect(await brokerView(url)).toEqual({ REPLICA_n0: ['n1'], REPLICA_n1: ['n0'], REPLICA_n2: [] });
  });
});

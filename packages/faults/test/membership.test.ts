// Membership faults: members added and removed while the cluster is not whole, with
// writes running. Each ends with checkConverged over the members: every acknowledged
// write on every member, one digest.
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterOptions } from '@replica/cluster';
import { checkConverged, insertLoad, logsOf, peakRssMiB, recordResult, seeded, sleep, status } from './lib/harness.js';
import { FaultProxy } from './lib/proxy.js';

const TRANSPORTS = ['plexus', 'nats'] as const;

/** Polls `check` every 100 ms; fails with `what` after `ms`. */
async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(100);
  }
}

const ready = async (url: string) => (await fetch(`${url}/ready`).then(async (r) => (await r.arrayBuffer(), r.status)).catch(() => 0)) === 200;

describe.each(TRANSPORTS)('membership faults on %s', (transport) => {
  let cluster: Cluster | undefined;
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  const start = async (extra: Partial<ClusterOptions> = {}): Promise<Cluster> => {
    cluster = await startCluster({ nodes: 3, transport, ...extra, env: { CONFIRM_TIMEOUT_MS: '3000', ...extra.env } });
    return cluster;
  };

  /** The cluster as its members: `c` without the nodes at `removed`. */
  const membersOf = (c: Cluster, removed: readonly number[]): Cluster => ({ ...c, nodes: c.nodes.filter((_, i) => !removed.includes(i)) });

  const finish = async (c: Cluster, scenario: string, seed: number, acked: readonly string[], note: string) => {
    const r = await checkConverged(c, { acked });
    recordResult({ scenario, transport, acked: acked.length, lost: r.lost, convergeMs: r.convergeMs, peakRssMiB: peakRssMiB(c), seed, note });
  };

  it('a node added while another member is down', async () => {
    const scenario = 'n4 added while n3 is down';
    const { seed, int } = seeded(`${transport}/${scenario}`);
    const c = await start();
    const targets = [0, 1];
    const load = insertLoad(c, { targets: () => targets, prefix: 'ma', concurrency: 12, maxWrites: 4000, maxMs: 40_000 });
    await sleep(int(200, 600));
    await c.kill(2, 'SIGKILL');
    const n4 = await c.add({ seed: 0 });
    await until(() => ready(n4.url), 20_000, 'n4 ready');
    targets.push(3);
    await sleep(int(300, 1000));
    // n3 learns of n4 from its peers' member list once it is back, and connects to it.
    await c.restart(2);
    await load.done;
    expect(load.failed(), logsOf(c)).toBe(0);
    await until(async () => (await status(c.nodes[2]?.url as string)).replication.peers.some((p) => p.name === 'n4' && p.connected), 20_000, 'n3 linked to n4');
    await finish(c, scenario, seed, load.acked, `${load.acked.length} acknowledged; n3 down while n4 joined`);
  });

  it('a node removed while writes run on it and on the others', async () => {
    const scenario = 'n4 removed under writes';
    const { seed, int } = seeded(`${transport}/${scenario}`);
    const c = await start();
    const n4 = await c.add({ seed: 1 });
    await until(() => ready(n4.url), 20_000, 'n4 ready');
    const load = insertLoad(c, { targets: () => [0, 1, 2, 3], prefix: 'mr', concurrency: 12, maxWrites: 4000, maxMs: 40_000 });
    await sleep(int(300, 1000));
    const ackedBefore = load.acked.length;
    await c.remove(3, { via: int(0, 2) });
    const removedAt = Date.now();
    await until(
      async () => {
        for (const n of c.nodes.slice(0, 3)) if ((await status(n.url)).replication.peers.some((p) => p.name === 'n4')) return false;
        return true;
      },
      15_000,
      'n4 gone from every member',
    );
    const goneMs = Date.now() - removedAt;
    await load.done;
    // Only n4 refuses writes once removed (503); the members take every write.
    const acked = load.acked;
    await finish(membersOf(c, [3]), scenario, seed, acked, `${ackedBefore} acknowledged before the removal (n4 took a quarter); n4 gone from every member ${goneMs} ms after it`);
  });

  // nats nodes have no links of their own to cut: each reads the others' streams from the broker.
  it.skipIf(transport === 'nats')('a node joining while a member link is cut', async () => {
    const scenario = 'n4 joins while link n1–n2 is cut';
    const { seed, int } = seeded(`${transport}/${scenario}`);
    let proxy: FaultProxy | undefined;
    const c = await start({
      // n1 dials n2 (names sort), so its route to n2 is the link to cut
      peerAddress: async (from, to, address) => {
        if (from !== 'n1' || to !== 'n2') return address;
        proxy = await FaultProxy.start(address);
        proxies.push(proxy);
        return { host: '127.0.0.1', port: proxy.port };
      },
    });
    const targets = [0, 1, 2];
    const load = insertLoad(c, { targets: () => targets, prefix: 'mj', concurrency: 12, maxWrites: 4000, maxMs: 40_000 });
    await sleep(int(200, 600));
    (proxy as FaultProxy).cut();
    // Added through n1: n2 learns of n4 only through n3, which relays n1's writes while the link is cut.
    const n4 = await c.add({ seed: 0 });
    await until(() => ready(n4.url), 20_000, 'n4 ready');
    targets.push(3);
    await until(async () => (await status(c.nodes[1]?.url as string)).replication.peers.some((p) => p.name === 'n4' && p.connected), 20_000, 'n2 linked to n4 while cut off from n1');
    expect((await status(c.nodes[0]?.url as string)).replication.peers.find((p) => p.name === 'n2')?.connected, 'the cut link is down').toBe(false);
    await sleep(int(300, 1000));
    (proxy as FaultProxy).restore();
    await load.done;
    expect(load.failed(), logsOf(c)).toBe(0);
    await finish(c, scenario, seed, load.acked, `${load.acked.length} acknowledged; link cut throughout the join`);
  });
});

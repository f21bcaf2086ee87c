// Membership faults: members added and removed while the cluster is not whole, with
// writes running. Each ends with checkConverged over the members: every acknowledged
// write on every member, one digest.
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterOptions } from '@replica/cluster';
import { checkConverged, insertLoad, logsOf, peakRssMiB, recordResult, seeded, sleep, status } from './lib/harness.js';
import { FaultProxy, proxyLink } from './lib/proxy.js';

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

  // plexus: a peer link cut by the proxy. nats nodes have no links of their own; what
  // can be cut is a node's link to the broker: n2's nats-server is killed for the join.
  it(transport === 'plexus' ? 'a node joining while a member link is cut' : 'a node joining while a member is cut off from the broker', async () => {
    const scenario = transport === 'plexus' ? 'n4 joins while link n1–n2 is cut' : "n4 joins while n2's nats-server is down";
    const { seed, int } = seeded(`${transport}/${scenario}`);
    let proxy: FaultProxy | undefined;
    const c = await start(
      transport === 'plexus'
        ? {
            // n1 dials n2 (names sort), so its route to n2 is the link to cut
            peerAddress: proxyLink('n1', 'n2', (p) => {
              proxy = p;
              proxies.push(p);
            }),
          }
        : {},
    );
    // nats per-write: n2 cannot acknowledge writes while its server is down, so it takes none meanwhile.
    const targets = transport === 'plexus' ? [0, 1, 2] : [0, 2];
    const load = insertLoad(c, { targets: () => targets, prefix: 'mj', concurrency: 12, maxWrites: 4000, maxMs: 40_000 });
    await sleep(int(200, 600));
    if (proxy) proxy.cut();
    else await c.natsServers[1]?.stop('SIGKILL');
    // Added through n1. plexus: n2 learns of n4 only through n3, which relays n1's writes
    // while the link is cut. nats: n4's server joins the NATS cluster without n2's.
    const n4 = await c.add({ seed: 0 });
    await until(() => ready(n4.url), 20_000, 'n4 ready');
    targets.push(3);
    if (proxy) {
      await until(async () => (await status(c.nodes[1]?.url as string)).replication.peers.some((p) => p.name === 'n4' && p.connected), 20_000, 'n2 linked to n4 while cut off from n1');
      expect((await status(c.nodes[0]?.url as string)).replication.peers.find((p) => p.name === 'n2')?.connected, 'the cut link is down').toBe(false);
    }
    await sleep(int(300, 1000));
    if (proxy) proxy.restore();
    else {
      await c.natsServers[1]?.restart();
      // n2 finds n4's stream once it is back, and consumes it.
      await until(async () => (await status(c.nodes[1]?.url as string)).replication.peers.some((p) => p.name === 'n4' && p.connected), 30_000, 'n2 consumes n4 after its server came back');
      targets.push(1);
    }
    await load.done;
    expect(load.failed(), logsOf(c)).toBe(0);
    await finish(c, scenario, seed, load.acked, `${load.acked.length} acknowledged; ${proxy ? 'link cut' : "n2's nats-server down"} throughout the join`);
  });
});

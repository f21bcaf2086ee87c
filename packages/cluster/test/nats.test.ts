import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../src/index.js';
import { convergedAndComplete, cursorsOf, expectTransportFiguresInMetrics, readyOnlyWhenCaughtUp, writeLoad } from './load.js';

describe.each(['per-write', 'batched'] as const)('a 3-process nats cluster (%s)', (natsMode) => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
  });
  const logsOf = (c: Cluster) => () =>
    [...c.nodes.map((n) => n.logFile), ...c.natsServers.map((s) => s.logFile)]
      .map((f) => `--- ${f}\n${readFileSync(f, 'utf8').split('\n').slice(-12).join('\n')}`)
      .join('\n');

  it('loses no acknowledged write when a node is killed with SIGKILL and restarted under load', async () => {
    cluster = await startCluster({ nodes: 3, transport: 'nats', natsMode });
    const c = cluster;
    const load = writeLoad(c, 'w', 2000, 24);
    await new Promise((r) => setTimeout(r, 400));
    await c.kill(2, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    // what a peer held while n3 was down: n3 may answer /ready only once it applied that
    const before = await cursorsOf(c.nodes[0]?.url as string);
    await c.restart(2);
    await readyOnlyWhenCaughtUp(c.nodes[2]!, before);
    const { acked } = await load;
    const after = await writeLoad(c, 'after', 200, 12);
    expect(after.failed, logsOf(c)()).toBe(0);
    expect(acked.length).toBeGreaterThan(1000);
    await convergedAndComplete(c, [...acked, ...after.acked], logsOf(c));
  });

  it('gives each nats-server its share of the host\'s cores (GOMAXPROCS), also after a restart of a running server', async () => {
    cluster = await startCluster({ nodes: 3, transport: 'nats', natsMode });
    const c = cluster;
    const gomaxprocs = async (configFile: string) => {
      const http = /^http: "([^"]+)"$/m.exec(readFileSync(configFile, 'utf8'))?.[1];
      return ((await (await fetch(`http://${http}/varz`)).json()) as { gomaxprocs: number }).gomaxprocs;
    };
    const share = Math.max(1, Math.floor(availableParallelism() / 3));
    for (const s of c.natsServers) expect(await gomaxprocs(s.configFile)).toBe(share);
    const before = c.natsServers[0]!.pid;
    await c.natsServers[0]?.restart(); // while it runs: the old process goes first
    expect(() => process.kill(before, 0)).toThrow();
    expect(c.natsServers[0]?.pid).not.toBe(before);
    expect(await gomaxprocs(c.natsServers[0]!.configFile)).toBe(share);
  });

  it('keeps every acknowledged write when a nats-server is killed and restarted under load', async () => {
    cluster = await startCluster({ nodes: 3, transport: 'nats', natsMode, env: { CONFIRM_TIMEOUT_MS: '2000' } });
    const c = cluster;
    const load = writeLoad(c, 'w', 2000, 24);
    await new Promise((r) => setTimeout(r, 400));
    await c.natsServers[1]?.stop('SIGKILL'); // n2's broker dies: its stream and its consumers are gone for a while
    await new Promise((r) => setTimeout(r, 1500));
    await c.natsServers[1]?.restart();
    const { acked, failed } = await load;
    // per-write: n2's answers wait for PubAcks, so some time out with 504 while its broker is down
    if (natsMode === 'batched') expect(failed).toBe(0);
    const after = await writeLoad(c, 'after', 200, 12);
    expect(after.failed, logsOf(c)()).toBe(0);
    await convergedAndComplete(c, [...acked, ...after.acked], logsOf(c));
    const n2 = (await (await fetch(`${c.nodes[1]?.url}/status`)).json()) as { replication: { counters: Record<string, number> } };
    expect(n2.replication.counters['disconnects']).toBeGreaterThan(0);
    expect(n2.replication.counters['reconnects']).toBeGreaterThan(0);
    // its publishes failed meanwhile and were resumed from what the stream really held
    expect(n2.replication.counters['publishErrors']).toBeGreaterThan(0);
    await expectTransportFiguresInMetrics(c.nodes[1]?.url as string);
  });
});

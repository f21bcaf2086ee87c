import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../src/index.js';
import { convergedAndComplete, cursorsOf, expectTransportFiguresInMetrics, readyOnlyWhenCaughtUp, writeLoad } from './load.js';

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
    // what a peer held while n3 was down: n3 may answer /ready only once it applied that
    const before = await cursorsOf(c.nodes[0]?.url as string);
    await c.restart(2);
    await readyOnlyWhenCaughtUp(c.nodes[2]!, before);
    const { acked, failed } = await load;
    const after = await writeLoad(c, 'after', 300, 12);
    expect(after.failed, logs()).toBe(0);
    const all = [...acked, ...after.acked];
    expect(acked.length).toBeGreaterThan(1500);
    expect(failed).toBeLessThan(1500);

    await convergedAndComplete(c, all, logs);
  });

  it('confirms replicas on request and shows per-peer state in /status and /metrics', async () => {
    cluster = await startCluster({ nodes: 3, transport: 'plexus' });
    const [n1, n2, n3] = cluster.nodes as [Cluster['nodes'][number], Cluster['nodes'][number], Cluster['nodes'][number]];
    const r = await fetch(`${n1.url}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-replicate-confirm': '2' },
      body: JSON.stringify({ id: 'confirmed' }),
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-replicate-confirmed')).toBe('2');
    // confirmed means applied: both peers answer for it right away
    for (const n of [n2, n3]) expect((await fetch(`${n.url}/items/confirmed`)).status).toBe(200);

    const s = (await (await fetch(`${n1.url}/status`)).json()) as {
      cursors: Record<string, number>;
      replication: { peers: { name: string; connected: boolean; info: Record<string, string>; appliedThrough: Record<string, number> }[] };
    };
    expect(s.replication.peers.map((p) => [p.name, p.connected, p.info['certificate']])).toEqual([
      ['n2', true, 'n2'],
      ['n3', true, 'n3'],
    ]);
    // n1's writes: its member record (written at its first start), then the confirmed write.
    expect(s.cursors['n1']).toBe(2);
    expect(s.replication.peers[0]?.appliedThrough['n1']).toBe(2);
    const metrics = await (await fetch(`${n1.url}/metrics`)).text();
    expect(metrics).toMatch(/^replica_peer_connected\{peer="n2"\} 1$/m);
    expect(metrics).toMatch(/^replica_peer_applied_through\{peer="n3",origin="n1"\} 2$/m);
    expect(metrics).toMatch(/^replica_peer_bytes_sent_total\{peer="n2"\} \d+$/m);
    await expectTransportFiguresInMetrics(n1.url);

    // With a peer down, a write asking for 2 confirmations gets 504 after CONFIRM_TIMEOUT_MS (5 s), and stays.
    await cluster.kill(2);
    const t0 = Date.now();
    const late = await fetch(`${n1.url}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-replicate-confirm': '2' },
      body: JSON.stringify({ id: 'half-confirmed' }),
    });
    expect(late.status).toBe(504);
    expect(await late.json()).toMatchObject({ code: 'REPLICA_ERR_CONFIRM_TIMEOUT', confirmed: 1, required: 2 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
    expect((await fetch(`${n2.url}/items/half-confirmed`)).status).toBe(200);
  });
});

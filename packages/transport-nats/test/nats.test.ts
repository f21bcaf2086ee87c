import { connect } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { converged, eventually } from '@replica/transport-api/testing';
import { encodeBatch } from '@replica/transport-api';
import { natsServerConfig, splitCredentials } from '../src/index.js';
import { natsCluster, type NatsNode, type NatsTestCluster } from './helpers.js';

describe('nats transport', () => {
  let c: NatsTestCluster | undefined;
  afterEach(async () => {
    await c?.teardown();
  });

  it('stores each node\'s stream on its own server, one message per write in per-write mode', async () => {
    c = await natsCluster(2, 'per-write');
    await Promise.all(Array.from({ length: 25 }, (_, i) => c!.nodes[0]?.put('t', { id: `k${i}` })));
    await converged(c.nodes, 15_000);
    const nc = await connect({ servers: c.servers[0]?.url as string });
    try {
      const si = await (await nc.jetstreamManager()).streams.info('REPLICA_n0');
      expect(si.state.messages).toBe(25);
      expect(si.cluster?.leader).toBe('n0');
      expect(si.config.storage).toBe('file');
    } finally {
      await nc.close();
    }
  });

  it('packs many writes per message in batched mode', async () => {
    c = await natsCluster(2, 'batched');
    await Promise.all(Array.from({ length: 400 }, (_, i) => c!.nodes[0]?.put('t', { id: `k${i}` })));
    await converged(c.nodes, 15_000);
    const nc = await connect({ servers: c.servers[0]?.url as string });
    try {
      const si = await (await nc.jetstreamManager()).streams.info('REPLICA_n0');
      expect(si.state.messages).toBeLessThan(100);
    } finally {
      await nc.close();
    }
    expect(c.nodes[0]?.transport.status().counters?.['published']).toBe(400);
  });

  it('makes redelivery harmless: a message delivered again applies nothing twice', async () => {
    c = await natsCluster(2, 'batched');
    await Promise.all(Array.from({ length: 30 }, (_, i) => c!.nodes[0]?.put('t', { id: `k${i}` })));
    await converged(c.nodes, 15_000);
    // tables() reads LMDB, which shows a commit a moment before lastSeq() counts it
    await eventually(() => c!.nodes[1]?.store.lastSeq() === 30, 5_000, () => `lastSeq ${c!.nodes[1]?.store.lastSeq()}`);
    const before = { tables: c.nodes[1]?.tables(), last: c.nodes[1]?.store.lastSeq() };
    // Publish the same entries again under a new message id, as a broker redelivery or a
    // retried publish outside the dedupe window would: the consumer sees them twice.
    const nc = await connect({ servers: c.servers[1]?.url as string });
    try {
      const js = nc.jetstream();
      await js.publish('replica.n0.t', encodeBatch(c.nodes[0]!.store.readLog(1, 100)), { msgID: 'replayed' });
    } finally {
      await nc.close();
    }
    const n1 = c.nodes[1]!;
    await eventually(() => (n1.transport.status().peers[0]?.counters['messagesFetched'] ?? 0) >= 2, 10_000, () => JSON.stringify(n1.transport.status()));
    await new Promise((r) => setTimeout(r, 300));
    expect(n1.tables()).toEqual(before.tables);
    expect(n1.store.lastSeq()).toBe(before.last);
    expect(n1.store.verify()).toEqual([]);
  });

  it('re-creates at its cursor a durable consumer that the broker lost or an operator deleted', async () => {
    c = await natsCluster(2, 'per-write');
    await Promise.all(Array.from({ length: 20 }, (_, i) => c!.nodes[0]?.put('t', { id: `a${i}` })));
    await converged(c.nodes, 15_000);
    const nc = await connect({ servers: c.servers[0]?.url as string });
    try {
      // n1's consumer on n0's stream goes while n1's pull requests wait on it
      expect(await (await nc.jetstreamManager()).consumers.delete('REPLICA_n0', 'n1')).toBe(true);
    } finally {
      await nc.close();
    }
    await Promise.all(Array.from({ length: 20 }, (_, i) => c!.nodes[0]?.put('t', { id: `b${i}` })));
    await converged(c.nodes, 15_000);
    expect(c.nodes[1]?.get('t', 'b19')).toEqual({ id: 'b19' });
    expect(c.nodes[1]?.store.verify()).toEqual([]);
    expect(c.nodes[1]?.transport.status().peers.find((p) => p.name === 'n0')?.counters['consumersLost']).toBe(1);
  });

  it('brings back a consumer that fell behind the stream limits with a merge resync', async () => {
    // n0's stream keeps messages for 1 s only; n1 is away for longer than that.
    c = await natsCluster(2, 'batched', (i) => (i === 0 ? { streamMaxAgeMs: 1000 } : {}));
    await c.nodes[0]?.put('t', { id: 'before' });
    await converged(c.nodes, 15_000);
    await c.stopNode(1);
    await Promise.all(Array.from({ length: 50 }, (_, i) => c!.nodes[0]?.put('t', { id: `away-${i}` })));
    await c.nodes[0]?.delete('t', 'before');
    await new Promise((r) => setTimeout(r, 2500)); // the stream discards those messages
    await Promise.all(Array.from({ length: 5 }, (_, i) => c!.nodes[0]?.put('t', { id: `late-${i}` })));
    await c.startNode(1);
    await converged(c.nodes, 20_000);
    const n1 = c.nodes[1]!;
    expectResynced(n1, 55);
    expect(n1.get('t', 'before')).toBeUndefined(); // the delete travelled in the snapshot
  });

  it('merges a snapshot when the stream has a hole in the middle (a message it never kept)', async () => {
    c = await natsCluster(2, 'per-write');
    await c.nodes[0]?.put('t', { id: 'before' });
    await converged(c.nodes, 15_000);
    await c.stopNode(1);
    for (let i = 0; i < 10; i++) await c.nodes[0]?.put('t', { id: `away-${i}` });
    await eventually(() => (c!.nodes[0]?.transport.status().gauges['shippedSeq'] ?? 0) >= 11, 10_000, () => JSON.stringify(c!.nodes[0]?.transport.status().gauges));
    // Stream seq 6 holds n0's 6th write: n1 will find entries 1–5 and 7–11 only.
    await deleteStreamMessage(c.servers[0]?.url as string, 'REPLICA_n0', 6);
    await c.startNode(1);
    await converged(c.nodes, 20_000);
    const n1 = c.nodes[1]!;
    expectResynced(n1, 11);
    expect(n1.get('t', 'away-4')).toEqual({ id: 'away-4' }); // the 6th write, only in the snapshot
  });

  it('skips a snapshot source that is not connected at once, and resyncs from another node', async () => {
    c = await natsCluster(3, 'per-write');
    await c.nodes[0]?.put('t', { id: 'before' });
    await converged(c.nodes, 15_000);
    await c.stopNode(2);
    for (let i = 0; i < 10; i++) await c.nodes[0]?.put('t', { id: `away-${i}` });
    await converged([c.nodes[0]!, c.nodes[1]!], 15_000);
    await deleteStreamMessage(c.servers[0]?.url as string, 'REPLICA_n0', 6);
    // The origin's node is down (its server and stream stay up): n2 asks it first.
    await c.stopNode(0);
    await c.startNode(2);
    // A source that does not answer would cost the 10 s idle timeout; "no responders" costs nothing.
    await converged([c.nodes[1]!, c.nodes[2]!], 7_000);
    expect(c.nodes[2]?.get('t', 'away-4')).toEqual({ id: 'away-4' });
    expect(c.nodes[2]?.store.verify()).toEqual([]);
  });

  it('ships on when its stream and its log both lost own entries, and a peer that lacks them merges a snapshot', async () => {
    // n0's stream keeps messages for 1 s; its log keeps only the newest entry.
    c = await natsCluster(2, 'per-write', (i) => (i === 0 ? { streamMaxAgeMs: 1000 } : {}), (i) => (i === 0 ? { retention: { maxEntries: 1 } } : {}));
    await c.nodes[0]?.put('t', { id: 'before' });
    await converged(c.nodes, 15_000);
    await c.stopNode(1);
    for (let i = 0; i < 20; i++) await c.nodes[0]?.put('t', { id: `away-${i}` });
    await eventually(() => (c!.nodes[0]?.transport.status().gauges['shippedSeq'] ?? 0) >= 21, 10_000, () => JSON.stringify(c!.nodes[0]?.transport.status().gauges));
    expect(await c.nodes[0]?.store.prune()).toBe(20); // shipped, so the outbox lets them go
    await c.stopNode(0);
    await new Promise((r) => setTimeout(r, 2500)); // the stream expires every message
    await c.startNode(0);
    const n0 = c.nodes[0]!;
    expect(n0.transport.status().counters?.['ownEntriesSkipped']).toBe(20);
    // A new write ships (per-write waits for its PubAck), instead of waiting forever
    // for PubAcks of entries nothing can publish again.
    const w = await n0.put('t', { id: 'after' });
    await n0.transport.shipped?.(w.seq);
    await c.startNode(1);
    await converged(c.nodes, 20_000);
    const n1 = c.nodes[1]!;
    expectResynced(n1, 22);
    expect(n1.get('t', 'away-0')).toEqual({ id: 'away-0' });
  });

  it('a node that lost its data after its stream expired gets its writes back from a peer and continues after them', async () => {
    c = await natsCluster(2, 'per-write', (i) => (i === 0 ? { streamMaxAgeMs: 1000 } : {}));
    for (let i = 0; i < 10; i++) await c.nodes[0]?.put('t', { id: `old-${i}` });
    await converged(c.nodes, 15_000);
    await c.stopNode(0);
    await c.wipeNode?.(0);
    await new Promise((r) => setTimeout(r, 2500)); // the stream expires every message
    await c.startNode(0);
    const n0 = c.nodes[0]!;
    expect(n0.tables().t?.count).toBe(10);
    expect(n0.cursors()['n0']).toBe(10);
    // Without the restore this write would reuse origin sequence 1, which n1 skips.
    const w = await n0.put('t', { id: 'after-wipe' });
    await n0.transport.shipped?.(w.seq);
    await converged(c.nodes, 15_000);
    expect(c.nodes[1]?.get('t', 'after-wipe')).toEqual({ id: 'after-wipe' });
    expect(n0.store.verify()).toEqual([]);
  });

  it('refuses to start a node that lost writes its stream no longer holds while no peer can send them', async () => {
    c = await natsCluster(2, 'per-write', (i) => (i === 0 ? { streamMaxAgeMs: 1000, startTimeoutMs: 1500 } : {}));
    for (let i = 0; i < 5; i++) await c.nodes[0]?.put('t', { id: `old-${i}` });
    await converged(c.nodes, 15_000);
    await c.stopNode(1);
    await c.stopNode(0);
    await c.wipeNode?.(0);
    await new Promise((r) => setTimeout(r, 2500));
    await expect(c.startNode(0)).rejects.toThrow(/lost writes that its stream no longer holds, and no peer \(n1\) could send them back/);
    expect(c.nodes[0]?.transport.status().started).toBe(false);
    expect(c.nodes[0]?.store.cursors()['n0'] ?? 0).toBe(0); // it wrote nothing
    // Once the peer runs again, the node starts and has its writes back.
    await c.nodes[0]?.store.close();
    await c.startNode(1);
    await c.startNode(0);
    expect(c.nodes[0]?.tables().t?.count).toBe(5);
  });

  it('a restarted node learns what a quiet peer applied: every node announces its cursors every few seconds', async () => {
    c = await natsCluster(2, 'per-write');
    const w = await c.nodes[0]!.put('t', { id: 'a' });
    await converged(c.nodes, 15_000);
    const confirmedToN0 = () => c!.nodes[0]?.transport.status().peers[0]?.appliedThrough['n0'];
    await eventually(() => confirmedToN0() === 1, 10_000, () => JSON.stringify(c!.nodes[0]?.transport.status().peers));
    await c.stopNode(0);
    await c.startNode(0);
    // n1 applies nothing after the restart: only its periodic announcement tells n0.
    const n0 = c.nodes[0]!;
    expect(await n0.transport.waitForReplicas?.(w.seq, 1, 10_000)).toBe(1);
    expect(confirmedToN0()).toBe(1);
  });

  it('with R3 streams and every server in its URL list, a node keeps shipping when its own nats-server is killed', async () => {
    // Each node lists its own server first, then the others; streams keep 3 copies.
    c = await natsCluster(3, 'per-write', (i, servers) => ({
      servers: [...servers.slice(i), ...servers.slice(0, i)].map((s) => s.url),
      streamReplicas: 3,
      placement: null,
      startTimeoutMs: 60_000,
    }));
    await c.nodes[0]?.put('t', { id: 'before' });
    await converged(c.nodes, 30_000);
    await c.servers[0]?.stop('SIGKILL');
    const n0 = c.nodes[0]!;
    for (let i = 0; i < 20; i++) {
      const w = await n0.put('t', { id: `during-${i}` });
      await n0.transport.shipped?.(w.seq); // acknowledged by the stream's copies on n1's and n2's servers
    }
    await eventually(() => (n0.transport.status().counters?.['reconnects'] ?? 0) >= 1, 10_000, () => JSON.stringify(n0.transport.status().counters));
    await converged(c.nodes, 30_000);
    await c.servers[0]?.restart();
    await c.nodes[1]?.put('t', { id: 'after' });
    await converged(c.nodes, 30_000);
    expect(c.nodes[2]?.tables().t?.count).toBe(22);
    for (const n of c.nodes) expect(n.store.verify()).toEqual([]);
  });

  it('authenticates with credentials from NATS_URL, and a server with authorization refuses a client without them', async () => {
    const { startNatsServer, freePort } = await import('../src/index.js');
    const { Store } = await import('@replica/storage');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/replica-nats-auth-`);
    const server = await startNatsServer({ name: 'solo', clientPort: await freePort(), httpPort: await freePort(), storeDir: `${dir}/js`, dir, auth: { user: 'app', password: 'p@ss:w/rd' } });
    const store = Store.open({ path: `${dir}/store`, nodeName: 'solo', pruneIntervalMs: 0 });
    try {
      expect(server.url).toMatch(/^nats:\/\/app:p%40ss%3Aw%2Frd@127\.0\.0\.1:\d+$/);
      const anonymous = server.url.replace(/\/\/[^@]+@/, '//');
      await expect(connect({ servers: anonymous, reconnect: false })).rejects.toThrow(/Authorization/i);
      const t = (await import('../src/index.js')).natsTransport({ servers: server.url, mode: 'batched' });
      await t.start(store);
      await store.put('t', { id: 'x' });
      await t.stop();
    } finally {
      await store.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hands out free ports below the kernel\'s range for outgoing connections, never the same one twice', async () => {
    const { freePort } = await import('../src/index.js');
    const { readFileSync } = await import('node:fs');
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports: number[] = [];
    for (let i = 0; i < 200; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(200);
    for (const p of ports) expect(p >= 10_000 && p < lo, `port ${p}`).toBe(true);
  });

  it('writes a server config with JetStream, cluster routes, auth and a placement tag', () => {
    const text = natsServerConfig({
      name: 'n1',
      clientPort: 4222,
      httpPort: 8222,
      clusterPort: 6222,
      routes: ['nats-route://127.0.0.1:6222', 'nats-route://127.0.0.1:6223'],
      storeDir: '/data/n1',
      auth: { user: 'app', password: 's3cret' },
      clusterAuth: { user: 'route', password: 'r0ute' },
    });
    expect(text).toContain('server_tags: ["n1"]');
    expect(text).toContain('store_dir: "/data/n1"');
    expect(text).toContain('authorization { user: "app", password: "s3cret" }');
    expect(text).toContain('routes: ["nats-route://route:r0ute@127.0.0.1:6222", "nats-route://route:r0ute@127.0.0.1:6223"]');
    expect(splitCredentials(['nats://a%40b:c%3Ad@h:1', 'nats://h:2'])).toEqual({ servers: ['nats://h:1', 'nats://h:2'], user: 'a@b', pass: 'c:d' });
  });
});

/** Deletes one message of a stream, as a stream edited by hand (or one that lost it) would be. */
async function deleteStreamMessage(url: string, stream: string, seq: number): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    expect(await (await nc.jetstreamManager()).streams.deleteMessage(stream, seq)).toBe(true);
  } finally {
    await nc.close();
  }
}

/** `n` holds `count` records of table t, caught up through at least one merge resync, and its store is consistent. */
function expectResynced(n: NatsNode, count: number): void {
  expect(n.tables().t?.count).toBe(count);
  expect(n.transport.status().peers[0]?.counters['resyncs']).toBeGreaterThanOrEqual(1);
  expect(n.store.verify()).toEqual([]);
}

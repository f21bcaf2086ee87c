import { connect } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { converged, eventually } from '@replica/transport-api/testing';
import { encodeBatch } from '@replica/transport-api';
import { natsServerConfig, splitCredentials } from '../src/index.js';
import { natsCluster, type NatsTestCluster } from './helpers.js';

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
    expect(n1.tables().t?.count).toBe(55);
    expect(n1.get('t', 'before')).toBeUndefined(); // the delete travelled in the snapshot
    expect(n1.transport.status().peers[0]?.counters['resyncs']).toBeGreaterThanOrEqual(1);
    expect(n1.store.verify()).toEqual([]);
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

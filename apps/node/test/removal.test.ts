// A write in flight when its node learns that it was removed from the cluster: the node
// hands its peers its log as it stood then and disconnects, so a write that commits
// afterwards would reach nobody. It must not be acknowledged. Two real plexus nodes
// (real stores, TLS sockets); n1's store holds its one write back until the removal is done.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '@replica/storage';
import { silentLogger } from '@replica/transport-api';
import { freePort } from '@replica/transport-api/ports';
import { plexusTransport, type PlexusPeer, type PlexusTransport } from '@replica/transport-plexus';
import { createCertificateAuthority, createNodeCertificate } from '@replica/certs';
import { buildApp } from '../src/app.js';
import { Membership } from '../src/membership.js';
import { tempDir, testConfig } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
  }
}

describe('a write in flight when its node is removed', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('is refused with 503 when it commits after the node handed its log over and left; no member has it', async () => {
    const dir = tempDir('replica-removal-');
    cleanups.push(() => dir.remove());
    const ca = await createCertificateAuthority('removal-test-ca');
    const peers: PlexusPeer[] = [];
    for (const name of ['n1', 'n2']) peers.push({ name, host: '127.0.0.1', port: await freePort('127.0.0.1') });
    const nodes = [];
    for (const peer of peers) {
      const store = Store.open({ path: join(dir.path, peer.name), nodeName: peer.name, pruneIntervalMs: 0 });
      const transport: PlexusTransport = plexusTransport(
        { listen: { host: peer.host, port: peer.port }, peers, tls: { ca: ca.cert, ...(await createNodeCertificate(ca, { name: peer.name })) }, removalDrainMs: 200 },
        { logger: silentLogger },
      );
      const membership = new Membership(store, transport, { name: peer.name, address: `${peer.host}:${peer.port}` }, silentLogger);
      await membership.start();
      await transport.start(store);
      cleanups.push(async () => {
        membership.stop();
        await transport.stop();
        await store.close();
      });
      nodes.push({ store, transport, membership });
    }
    const [n1, n2] = nodes as [(typeof nodes)[number], (typeof nodes)[number]];
    await until(() => n2.membership.list().some((m) => m.name === 'n1' && m.state === 'active'), 10_000, 'n2 lists n1');

    // n1's app, on a store whose next put waits until `release`
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered = false;
    const gated = new Proxy(n1.store, {
      get(target, prop) {
        if (prop === 'put') {
          return async (...args: Parameters<Store['put']>) => {
            entered = true;
            await held;
            return target.put(...args);
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const app = buildApp({ ...testConfig({ CONFIRM_TIMEOUT_MS: '500' }), nodeName: 'n1' }, { store: gated, transport: n1.transport, membership: n1.membership });
    await app.ready();
    cleanups.push(() => app.close());

    const response = app.inject({ method: 'POST', url: '/items', headers: { 'content-type': 'application/json' }, payload: { id: 'in-flight' } });
    await until(() => entered, 5000, 'the write reached the store');
    await n2.membership.remove('n1');
    // n1 learns of it, hands over its log (nothing new in it) and disconnects
    await until(() => n1.membership.selfRemoved && n1.transport.peerNames().length === 0, 10_000, 'n1 left the cluster');
    release();
    const r = await response;
    expect(r.statusCode, r.body).toBe(503);
    expect(r.json()).toMatchObject({ code: 'REPLICA_ERR_UNAVAILABLE', message: expect.stringMatching(/removed from the cluster while the write was in flight/) });
    expect(n1.store.get('items', 'in-flight'), 'committed on n1 (not acknowledged)').toBeDefined();
    await sleep(300);
    expect(n2.store.get('items', 'in-flight'), 'no member has it').toBeUndefined();

    // and a write that starts now is refused before it is written
    const late = await app.inject({ method: 'POST', url: '/items', headers: { 'content-type': 'application/json' }, payload: { id: 'late' } });
    expect(late.statusCode).toBe(503);
    expect(n1.store.get('items', 'late')).toBeUndefined();
  });
});

import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '@replica/storage';
import type { ReplicationTransport } from '@replica/transport-api';
import { MemoryNetwork, memoryTransport } from '@replica/transport-memory';
import { buildApp } from '../src/index.js';
import { openStore, tempDir, testConfig } from './helpers.js';

// Write concern over the in-process reference transport: it checks the app's side
// of X-Replicate-Confirm (parsing, waiting, 504). Each real transport's own tests
// check confirmation over real sockets.
describe('X-Replicate-Confirm', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function cluster(size: number) {
    const network = new MemoryNetwork();
    const dir = tempDir();
    cleanups.push(async () => dir.remove());
    const nodes: { store: Store; transport: ReplicationTransport; app: FastifyInstance }[] = [];
    for (let i = 0; i < size; i++) {
      const store = openStore(`${dir.path}/n${i}`, `n${i}`);
      const transport = memoryTransport({ network });
      await transport.start(store);
      const app = buildApp(testConfig({ CONFIRM_TIMEOUT_MS: '300' }), { store, transport });
      await app.ready();
      cleanups.push(async () => {
        await app.close();
        await transport.stop();
        await store.close();
      });
      nodes.push({ store, transport, app });
    }
    return nodes;
  }

  const post = (app: FastifyInstance, id: string, k: string) =>
    app.inject({ method: 'POST', url: '/t', headers: { 'content-type': 'application/json', 'x-replicate-confirm': k }, payload: { id } });

  it('waits until k peers applied the write', async () => {
    const [a, b, c] = await cluster(3);
    const r = await post(a!.app, 'x', '2');
    expect(r.statusCode).toBe(201);
    expect(r.headers['x-replicate-confirmed']).toBe('2');
    // Confirmed means applied: both peers hold it the moment the response is out.
    expect(b!.store.get('t', 'x')).toEqual({ id: 'x' });
    expect(c!.store.get('t', 'x')).toEqual({ id: 'x' });
  });

  it('answers 504 with the confirmed count when peers do not confirm in time, keeping the local write', async () => {
    const [a, , c] = await cluster(3);
    await c!.transport.stop();
    const r = await post(a!.app, 'y', '2');
    expect(r.statusCode).toBe(504);
    expect(r.json()).toMatchObject({ code: 'REPLICA_ERR_CONFIRM_TIMEOUT', confirmed: 1, required: 2 });
    expect(r.json().message).toMatch(/committed locally/);
    expect(a!.store.get('t', 'y')).toEqual({ id: 'y' });
  });

  it('0 does not wait; more than the peer count is refused before writing', async () => {
    const [a] = await cluster(2);
    expect((await post(a!.app, 'z', '0')).statusCode).toBe(201);
    const r = await post(a!.app, 'w', '2');
    expect(r.statusCode).toBe(400);
    expect(a!.store.get('t', 'w')).toBeUndefined();
  });
});

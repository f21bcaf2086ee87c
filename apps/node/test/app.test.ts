import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '@replica/storage';
import { MemoryNetwork, memoryTransport } from '@replica/transport-memory';
import { buildApp } from '../src/index.js';
import { families, openStore, sample, tempDir, testConfig, transportsUnderTest } from './helpers.js';

const json = { 'content-type': 'application/json' };

describe.each(transportsUnderTest())('REST node (transport %s)', (kind) => {
  let dir: ReturnType<typeof tempDir>;
  let store: Store;
  let app: FastifyInstance;

  const start = async (env: Record<string, string> = {}) => {
    app = buildApp(testConfig({ REPLICATION_TRANSPORT: kind, ...env }), { store });
    await app.ready();
  };
  beforeEach(async () => {
    dir = tempDir();
    store = openStore(dir.path);
    await start();
  });
  afterEach(async () => {
    await app.close();
    await store.close();
    dir.remove();
  });

  const post = (table: string, body: unknown, headers: Record<string, string> = json) =>
    app.inject({ method: 'POST', url: `/${table}`, headers, payload: typeof body === 'string' ? body : JSON.stringify(body) });

  describe('writes and reads', () => {
    it('POST /:table/ (with the trailing slash Harper clients send) inserts like POST /:table', async () => {
      const r = await app.inject({ method: 'POST', url: '/Bench/', headers: json, payload: '{"id":"slash"}' });
      expect([r.statusCode, r.json()]).toEqual([201, { id: 'slash' }]);
      expect(store.get('Bench', 'slash')).toEqual({ id: 'slash' });
      expect((await app.inject({ url: '/Bench/slash/' })).statusCode).toBe(200);
    });

    it('takes the request id from X-Request-Id when it is a sane token, else makes one; echoes it in the header and in error bodies', async () => {
      const given = await app.inject({ method: 'POST', url: '/users', headers: { ...json, 'x-request-id': 'trace-42.a:b' }, payload: '{"id":"x"}' });
      expect(given.headers['x-request-id']).toBe('trace-42.a:b');
      const failed = await app.inject({ method: 'POST', url: '/users', headers: { ...json, 'x-request-id': 'trace-43' }, payload: '{"id":"x"}' });
      expect([failed.statusCode, failed.headers['x-request-id'], failed.json().requestId]).toEqual([409, 'trace-43', 'trace-43']);
      for (const bad of ['has space', 'x'.repeat(129), 'new\u00e9', '']) {
        const r = await app.inject({ url: '/users/missing', headers: { 'x-request-id': bad } });
        const id = r.headers['x-request-id'] as string;
        expect(id, JSON.stringify(bad)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(r.json().requestId).toBe(id);
      }
      const unrouted = await app.inject({ method: 'PATCH', url: '/users/x', headers: { 'x-request-id': 'trace-44' } });
      expect([unrouted.statusCode, unrouted.json().requestId]).toEqual([404, 'trace-44']);
    });

    it('POST inserts with the given id or a new UUID, and GET returns the record', async () => {
      const r1 = await post('users', { id: 'ada', name: 'Ada' });
      expect(r1.statusCode).toBe(201);
      expect(r1.json()).toEqual({ id: 'ada' });
      const r2 = await post('users', { name: 'Anonymous' });
      expect(r2.statusCode).toBe(201);
      const { id } = r2.json() as { id: string };
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const got = await app.inject({ url: `/users/${id}` });
      expect(got.statusCode).toBe(200);
      expect(got.json()).toEqual({ id, name: 'Anonymous' });
    });

    it('POST of an existing id is a 409 and leaves the record as it was', async () => {
      await post('users', { id: 'ada', v: 1 });
      const r = await post('users', { id: 'ada', v: 2 });
      expect(r.statusCode).toBe(409);
      expect(r.json()).toMatchObject({ code: 'REPLICA_ERR_RECORD_EXISTS' });
      expect(store.get('users', 'ada')).toEqual({ id: 'ada', v: 1 });
    });

    it('PUT upserts: 201 when created, 200 when replaced; a conflicting body id is refused', async () => {
      const put = (payload: unknown) => app.inject({ method: 'PUT', url: '/users/ada', headers: json, payload: JSON.stringify(payload) });
      expect((await put({ v: 1 })).statusCode).toBe(201);
      expect((await put({ id: 'ada', v: 2 })).statusCode).toBe(200);
      expect(store.get('users', 'ada')).toEqual({ id: 'ada', v: 2 });
      const bad = await put({ id: 'bob', v: 3 });
      expect(bad.statusCode).toBe(400);
      expect(store.get('users', 'bob')).toBeUndefined();
    });

    it('DELETE answers 204, then 404; GET of a deleted record is 404', async () => {
      await post('users', { id: 'ada' });
      expect((await app.inject({ method: 'DELETE', url: '/users/ada' })).statusCode).toBe(204);
      const again = await app.inject({ method: 'DELETE', url: '/users/ada' });
      expect(again.statusCode).toBe(404);
      expect(again.json()).toMatchObject({ code: 'REPLICA_ERR_RECORD_NOT_FOUND' });
      expect((await app.inject({ url: '/users/ada' })).json()).toMatchObject({ code: 'REPLICA_ERR_RECORD_NOT_FOUND' });
    });

    it('tells an unknown table from an unknown record', async () => {
      expect((await app.inject({ url: '/nothing/x' })).json()).toMatchObject({ statusCode: 404, code: 'REPLICA_ERR_TABLE_NOT_FOUND' });
      await post('things', { id: 'a' });
      expect((await app.inject({ url: '/things/x' })).json()).toMatchObject({ statusCode: 404, code: 'REPLICA_ERR_RECORD_NOT_FOUND' });
    });

    it('ids with URL-special characters round-trip', async () => {
      const id = 'a b/ü?#';
      expect((await post('t', { id })).statusCode).toBe(201);
      const got = await app.inject({ url: `/t/${encodeURIComponent(id)}` });
      expect(got.json()).toEqual({ id });
    });
  });

  describe('bad input gets a clear error and changes nothing', () => {
    const cases: [string, () => Promise<{ statusCode: number; json(): unknown }>, number, string][] = [
      ['malformed JSON', () => post('t', '{"id": "a",'), 400, 'REPLICA_ERR_BODY_INVALID_JSON'],
      ['an empty JSON body', () => post('t', ''), 400, 'REPLICA_ERR_BODY_INVALID_JSON'],
      ['a body that is an array', () => post('t', [1, 2]), 400, 'REPLICA_ERR_RECORD_INVALID'],
      ['a body that is a string', () => post('t', '"hello"'), 400, 'REPLICA_ERR_RECORD_INVALID'],
      ['a body that is null', () => post('t', 'null'), 400, 'REPLICA_ERR_RECORD_INVALID'],
      ['a numeric id', () => post('t', { id: 42 }), 400, 'REPLICA_ERR_RECORD_INVALID'],
      ['an empty id', () => post('t', { id: '' }), 400, 'REPLICA_ERR_RECORD_INVALID'],
      ['an id over 512 bytes', () => post('t', { id: 'é'.repeat(257) }), 400, 'REPLICA_ERR_RECORD_INVALID'],
      ['an invalid table name', () => post('1table', { id: 'a' }), 400, 'REPLICA_ERR_TABLE_INVALID'],
      ['a table name with a dash', () => post('my-table', { id: 'a' }), 400, 'REPLICA_ERR_TABLE_INVALID'],
      ['a reserved table name', () => post('status', { id: 'a' }), 400, 'REPLICA_ERR_TABLE_INVALID'],
      ['a table name over 64 characters', () => post(`t${'x'.repeat(64)}`, { id: 'a' }), 400, 'REPLICA_ERR_TABLE_INVALID'],
      ['a prototype-poisoning body', () => post('t', '{"id":"p","__proto__":{"admin":true}}'), 400, 'REPLICA_ERR_BODY_INVALID_JSON'],
      ['deeply nested JSON', () => post('t', `{"id":"d","x":${'['.repeat(5000)}${']'.repeat(5000)}}`), 400, 'REPLICA_ERR_RECORD_INVALID'],
      ['a text/plain body', () => post('t', 'hi', { 'content-type': 'text/plain' }), 415, 'REPLICA_ERR_BODY_MEDIA_TYPE'],
      ['a body over the limit', () => post('t', { id: 'big', x: 'x'.repeat(1024 * 1024) }), 413, 'REPLICA_ERR_BODY_TOO_LARGE'],
      ['a bad X-Replicate-Confirm', () => post('t', { id: 'c' }, { ...json, 'x-replicate-confirm': 'two' }), 400, 'REPLICA_ERR_CONFIRM_INVALID'],
      ['more confirmations than peers', () => post('t', { id: 'c' }, { ...json, 'x-replicate-confirm': '1' }), 400, 'REPLICA_ERR_CONFIRM_INVALID'],
      ['GET with an invalid table name', () => app.inject({ url: '/1table/x' }), 400, 'REPLICA_ERR_TABLE_INVALID'],
      ['DELETE with an invalid table name', () => app.inject({ method: 'DELETE', url: '/bad-name/x' }), 400, 'REPLICA_ERR_TABLE_INVALID'],
      ['an unknown route', () => app.inject({ method: 'PATCH', url: '/t/a' }), 404, 'REPLICA_ERR_ROUTE_NOT_FOUND'],
      ['a path too deep', () => app.inject({ url: '/t/a/b' }), 404, 'REPLICA_ERR_ROUTE_NOT_FOUND'],
    ];
    it.each(cases)('%s', async (_name, send, status, code) => {
      const r = await send();
      expect(r.statusCode).toBe(status);
      expect(r.json()).toMatchObject({ statusCode: status, code, message: expect.any(String) });
      expect(store.lastSeq()).toBe(0);
      expect(store.tables()).toEqual({});
    });

    it('names the content type it refused', async () => {
      const r = await post('t', 'hi', { 'content-type': 'text/plain' });
      expect(r.json().message).toBe('unsupported content type "text/plain": send application/json');
    });
  });

  describe('API_TOKEN', () => {
    const token = 'correct-horse-battery-staple';
    beforeEach(async () => {
      await app.close();
      await start({ API_TOKEN: token });
    });

    it('table routes need the bearer token; without it nothing is written or read', async () => {
      await store.put('t', { id: 'secret' });
      for (const headers of [{}, { authorization: 'Bearer wrong-token-of-some-length' }, { authorization: token }]) {
        const w = await post('t', { id: 'x' }, { ...json, ...headers });
        expect(w.statusCode).toBe(401);
        expect(w.json()).toMatchObject({ code: 'REPLICA_ERR_AUTH_REQUIRED' });
        expect((await app.inject({ url: '/t/secret', headers })).statusCode).toBe(401);
        expect((await app.inject({ method: 'DELETE', url: '/t/secret', headers })).statusCode).toBe(401);
      }
      expect(store.get('t', 'x')).toBeUndefined();
      expect(store.get('t', 'secret')).toBeDefined();
      const ok = await post('t', { id: 'x' }, { ...json, authorization: `Bearer ${token}` });
      expect(ok.statusCode).toBe(201);
    });

    it('operations routes stay open for probes and scrapers', async () => {
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
    });
  });

  describe('operations', () => {
    it('/health is liveness: 200 while the transport has not started, when /ready says why it is not ready', async () => {
      const idle = buildApp(testConfig(), { store, transport: memoryTransport({ network: new MemoryNetwork() }) });
      try {
        expect((await idle.inject({ url: '/health' })).statusCode).toBe(200);
        const r = await idle.inject({ url: '/ready' });
        expect(r.statusCode).toBe(503);
        expect(r.json()).toMatchObject({ code: 'REPLICA_ERR_NOT_READY', reason: 'replication transport not started' });
      } finally {
        await idle.close();
      }
    });

    it('/health answers 200 with the node name', async () => {
      const r = await app.inject({ url: '/health' });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual({ status: 'ok', node: 'standalone' });
    });

    it('/status shows per-table count and digest, the log and the transport', async () => {
      await post('a', { id: '1' });
      await post('a', { id: '2' });
      await post('b', { id: '1' });
      await app.inject({ method: 'DELETE', url: '/a/2' });
      const s = (await app.inject({ url: '/status' })).json() as Record<string, unknown>;
      expect(s).toMatchObject({
        node: 'standalone',
        transport: kind,
        mode: 'standalone',
        durability: 'committed',
        log: { firstSeq: 1, lastSeq: 4 },
        cursors: { standalone: 4 },
        tables: { a: { count: 1, digest: expect.stringMatching(/^[0-9a-f]{32}$/) }, b: { count: 1 } },
      });
      expect(s['tables']).toEqual(store.tables());
    });

    it('/metrics parses as Prometheus text: default Node.js metrics, build info, request, write and table figures', async () => {
      await post('a', { id: '1' });
      await post('a', { id: '1' });
      const r = await app.inject({ url: '/metrics' });
      expect(r.headers['content-type']).toMatch(/^text\/plain; version=0.0.4/);
      const m = families(r.body);
      for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
        expect(m.get(name), name).toBeDefined();
      }
      expect(m.get('replica_build_info')?.metrics[0]).toEqual({ value: '1', labels: { version: expect.stringMatching(/^\d+\.\d+\.\d+/), node_version: process.version, transport: 'none' } });
      expect(sample(m, 'replica_http_requests_total', { method: 'POST', route: '/:table', status: '201' })?.value).toBe('1');
      expect(sample(m, 'replica_http_requests_total', { method: 'POST', route: '/:table', status: '409' })?.value).toBe('1');
      expect(m.get('replica_http_requests_total')?.type).toBe('COUNTER');
      expect(m.get('replica_http_request_duration_seconds')?.type).toBe('HISTOGRAM');
      expect(sample(m, 'replica_writes_total', { op: 'insert' })?.value).toBe('1');
      expect(sample(m, 'replica_table_records', { table: 'a' })?.value).toBe('1');
      expect(m.get('replica_replication_lag_seconds')?.type).toBe('HISTOGRAM');
      expect(m.get('replica_log_last_seq')?.metrics[0]?.value).toBe('1');
    });

    it('/metrics bounds the table label: the first 64 tables by name, the rest summed as _other', async () => {
      for (let i = 0; i < 70; i++) await post(`t${String(i).padStart(2, '0')}`, { id: 'x' });
      await post('t69', { id: 'y' });
      const m = families((await app.inject({ url: '/metrics' })).body);
      expect(m.get('replica_table_records')?.metrics).toHaveLength(65);
      expect(sample(m, 'replica_table_records', { table: 't63' })?.value).toBe('1');
      expect(sample(m, 'replica_table_records', { table: 't64' })).toBeUndefined();
      // t64 to t69: six tables, seven records
      expect(sample(m, 'replica_table_records', { table: '_other' })?.value).toBe('7');
    });
  });
});

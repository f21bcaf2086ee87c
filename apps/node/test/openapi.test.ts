import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '@replica/storage';
import { allErrorCodes, buildApp } from '../src/index.js';
import { openStore, tempDir, testConfig } from './helpers.js';

type Spec = {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }> }>>;
  components: { schemas: Record<string, { properties: { code: { enum: string[] } } }> };
};

describe('the OpenAPI description', () => {
  const dir = tempDir();
  let store: Store;
  let app: FastifyInstance;
  let spec: Spec;

  beforeAll(async () => {
    store = openStore(dir.path);
    app = buildApp(testConfig({ ADMIN_TOKEN: 'a'.repeat(32) }), { store });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    spec = res.json() as Spec;
  });
  afterAll(async () => {
    await app.close();
    await store.close();
    dir.remove();
  });

  it('validates as OpenAPI 3', async () => {
    expect(spec.openapi).toMatch(/^3\./);
    const r = await new Validator().validate(spec as unknown as Record<string, unknown>);
    expect(r.errors ?? []).toEqual([]);
    expect(r.valid).toBe(true);
  });

  it('lists every route the node serves, and not its own documentation routes', () => {
    const routes = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routes.sort()).toEqual(
      [
        'GET /health',
        'GET /ready',
        'GET /status',
        'GET /metrics',
        'POST /{table}',
        'PUT /{table}/{id}',
        'GET /{table}/{id}',
        'DELETE /{table}/{id}',
        'GET /cluster/members',
        'POST /cluster/members',
        'DELETE /cluster/members/{name}',
        'POST /cluster/join-tokens',
        'POST /cluster/join',
      ].sort(),
    );
  });

  it('names every error code of docs/errors.md, and each route its own codes under their HTTP status', () => {
    expect([...spec.components.schemas['ReplicaError']!.properties.code.enum].sort()).toEqual([...allErrorCodes].sort());
    const post = spec.paths['/{table}']!['post']!.responses;
    expect(post['409']?.description).toContain('REPLICA_ERR_RECORD_EXISTS');
    expect(post['413']?.description).toContain('REPLICA_ERR_BODY_TOO_LARGE');
    expect(post['400']?.description).toContain('REPLICA_ERR_RECORD_INVALID');
    expect(spec.paths['/ready']!['get']!.responses['503']?.description).toBe('REPLICA_ERR_NOT_READY');
    expect(spec.paths['/cluster/members/{name}']!['delete']!.responses['409']?.description).toContain('REPLICA_ERR_MEMBER_REMOVAL_REFUSED');
  });

  it('is served as a UI at /docs, and the schemas change no answer: a bad body still gets its Replica code', async () => {
    const ui = await app.inject({ method: 'GET', url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toContain('text/html');
    const bad = await app.inject({ method: 'POST', url: '/t', payload: [1, 2] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'REPLICA_ERR_RECORD_INVALID', requestId: expect.any(String) });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body.startsWith('"')).toBe(false);
    const status = await app.inject({ method: 'GET', url: '/status' });
    expect(status.json()).toMatchObject({ node: 'standalone', log: { lastSeq: 0 } });
  });
});

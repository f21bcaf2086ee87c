import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '@replica/storage';
import { MEMBERS_TABLE, silentLogger } from '@replica/transport-api';
import { plexusTransport, type PlexusTransport } from '@replica/transport-plexus';
import { createCertificateAuthority, createNodeCertificate } from '@replica/certs';
import { buildApp } from '../src/app.js';
import type { Config } from '../src/config.js';
import { Membership } from '../src/membership.js';
import { tempDir, testConfig } from './helpers.js';

const ADMIN = 'admin-token-0123456789';
const API = 'table-token-0123456789';

interface Answer {
  statusCode: number;
  code: string;
  message: string;
}

/** A plexus node n1 (real store, real transport listening on TLS) behind the app, driven with inject. */
async function plexusNode(dir: string, adminToken: string | undefined) {
  const ca = await createCertificateAuthority('admin-test-ca');
  const n1 = await createNodeCertificate(ca, { name: 'n1' });
  const store = Store.open({ path: join(dir, 'n1'), nodeName: 'n1', pruneIntervalMs: 0 });
  const transport: PlexusTransport = plexusTransport({ listen: { host: '127.0.0.1', port: 0 }, peers: [], tls: { ca: ca.cert, ...n1 } });
  const membership = new Membership(store, transport, { name: 'n1', address: '127.0.0.1:19800' }, silentLogger);
  await membership.start();
  await transport.start(store);
  const base = testConfig({ API_TOKEN: API, ...(adminToken ? { ADMIN_TOKEN: adminToken } : {}) });
  const config: Config = { ...base, nodeName: 'n1' };
  const app = buildApp(config, { store, transport, membership });
  await app.ready();
  return {
    store,
    app,
    async close() {
      await app.close();
      membership.stop();
      await transport.stop();
      await store.close();
    },
  };
}

describe('the admin API', () => {
  const dir = tempDir('replica-admin-');
  let node: Awaited<ReturnType<typeof plexusNode>>;
  let off: Awaited<ReturnType<typeof plexusNode>>;
  let app: FastifyInstance;
  const auth = { authorization: `Bearer ${ADMIN}` };
  const inject = async (method: 'GET' | 'POST' | 'DELETE', url: string, opts: { headers?: Record<string, string>; body?: unknown; payload?: string } = {}) => {
    const r = await app.inject({
      method,
      url,
      headers: { ...auth, ...(opts.body !== undefined || opts.payload !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { payload: JSON.stringify(opts.body) } : opts.payload !== undefined ? { payload: opts.payload } : {}),
    });
    return { status: r.statusCode, body: r.json() as Answer & Record<string, unknown> };
  };
  /** What a refused request must leave as it was: the member list and the log. */
  const snapshot = () => ({ members: node.store.tables()[MEMBERS_TABLE], lastSeq: node.store.lastSeq() });

  beforeAll(async () => {
    node = await plexusNode(dir.path, ADMIN);
    off = await plexusNode(join(dir.path, 'off'), undefined);
    app = node.app;
  });
  afterAll(async () => {
    await node?.close();
    await off?.close();
    dir.remove();
  });

  it('is off without ADMIN_TOKEN, and says so with a stable code', async () => {
    for (const [method, url] of [
      ['GET', '/cluster/members'],
      ['POST', '/cluster/members'],
      ['DELETE', '/cluster/members/n2'],
    ] as const) {
      const r = await off.app.inject({ method, url, headers: auth, ...(method === 'POST' ? { payload: { name: 'n2', address: 'h:1' } } : {}) });
      expect(r.statusCode, `${method} ${url}`).toBe(403);
      expect(r.json()).toMatchObject({ code: 'REPLICA_ERR_ADMIN_DISABLED', message: expect.stringContaining('ADMIN_TOKEN') });
    }
  });

  it('refuses a missing or wrong token, the table token included, with 401', async () => {
    const before = snapshot();
    for (const headers of [{ authorization: '' }, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: `Bearer ${API}` }, { authorization: ADMIN }]) {
      for (const [method, url, body] of [
        ['GET', '/cluster/members', undefined],
        ['POST', '/cluster/members', { name: 'n9', address: '127.0.0.1:9' }],
        ['DELETE', '/cluster/members/n1', undefined],
      ] as const) {
        const r = await inject(method, url, { headers, ...(body ? { body } : {}) });
        expect(r.status, `${method} ${url} with ${headers.authorization}`).toBe(401);
        expect(r.body.code).toBe('REPLICA_ERR_ADMIN_AUTH_REQUIRED');
      }
    }
    expect(snapshot()).toEqual(before);
    // The admin token is not a table token either.
    const t = await app.inject({ method: 'GET', url: '/items/x', headers: auth });
    expect(t.json()).toMatchObject({ code: 'REPLICA_ERR_AUTH_REQUIRED' });
  });

  it('lists the members, this node recorded by itself at start', async () => {
    const r = await inject('GET', '/cluster/members');
    expect(r.status).toBe(200);
    expect(r.body['members']).toEqual([
      { name: 'n1', address: '127.0.0.1:19800', state: 'active', revoked: [], changedAt: expect.any(String), changedBy: 'n1', connected: true },
    ]);
  });

  it('refuses bad input with a clear code, and changes nothing', async () => {
    const before = snapshot();
    const cases: [string, 'POST' | 'DELETE', string, { body?: unknown; payload?: string }, number, string][] = [
      ['not JSON', 'POST', '/cluster/members', { payload: '{"name":' }, 400, 'REPLICA_ERR_BODY_INVALID_JSON'],
      ['an array', 'POST', '/cluster/members', { body: [{ name: 'n2' }] }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['a string', 'POST', '/cluster/members', { body: 'n2' }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['no name', 'POST', '/cluster/members', { body: { address: '127.0.0.1:9802' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['a name that is a number', 'POST', '/cluster/members', { body: { name: 4, address: '127.0.0.1:9802' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['an invalid name', 'POST', '/cluster/members', { body: { name: 'bad name', address: '127.0.0.1:9802' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['a name too long', 'POST', '/cluster/members', { body: { name: 'n'.repeat(65), address: '127.0.0.1:9802' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['no address (plexus needs one)', 'POST', '/cluster/members', { body: { name: 'n2' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['an address without a port', 'POST', '/cluster/members', { body: { name: 'n2', address: '127.0.0.1' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['port 0', 'POST', '/cluster/members', { body: { name: 'n2', address: '127.0.0.1:0' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['port 70000', 'POST', '/cluster/members', { body: { name: 'n2', address: '127.0.0.1:70000' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['an address with a space', 'POST', '/cluster/members', { body: { name: 'n2', address: 'a b:1' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['an address that is a number', 'POST', '/cluster/members', { body: { name: 'n2', address: 9802 } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['an unknown field', 'POST', '/cluster/members', { body: { name: 'n2', address: '127.0.0.1:9802', role: 'leader' } }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['an existing member', 'POST', '/cluster/members', { body: { name: 'n1', address: '127.0.0.1:9802' } }, 409, 'REPLICA_ERR_MEMBER_EXISTS'],
      ['removing an unknown node', 'DELETE', '/cluster/members/n7', {}, 404, 'REPLICA_ERR_MEMBER_NOT_FOUND'],
      ['removing an invalid name', 'DELETE', '/cluster/members/bad%20name', {}, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['removing the node itself', 'DELETE', '/cluster/members/n1', {}, 409, 'REPLICA_ERR_MEMBER_REMOVAL_REFUSED'],
    ];
    for (const [what, method, url, body, status, code] of cases) {
      const r = await inject(method, url, body);
      expect([r.status, r.body.code], what).toEqual([status, code]);
      expect(r.body.message, what).toMatch(/\S/);
    }
    expect(snapshot()).toEqual(before);
  });

  it('adds, removes and adds again; a removed member cannot be removed twice; the table routes cannot reach the list', async () => {
    const added = await inject('POST', '/cluster/members', { body: { name: 'n2', address: '127.0.0.1:9802' } });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ name: 'n2', address: '127.0.0.1:9802', state: 'active', changedBy: 'n1' });
    const removed = await inject('DELETE', '/cluster/members/n2');
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ name: 'n2', state: 'removed', changedBy: 'n1' });
    const before = snapshot();
    const again = await inject('DELETE', '/cluster/members/n2');
    expect([again.status, again.body.code]).toEqual([404, 'REPLICA_ERR_MEMBER_NOT_FOUND']);
    expect(snapshot()).toEqual(before);
    const back = await inject('POST', '/cluster/members', { body: { name: 'n2', address: '127.0.0.1:9812' } });
    expect(back.status).toBe(201);
    expect(back.body).toMatchObject({ name: 'n2', address: '127.0.0.1:9812', state: 'active' });

    // The list lives in a system table that the table routes refuse.
    const open = { authorization: `Bearer ${API}` };
    for (const [method, url] of [
      ['GET', '/$members/n1'],
      ['GET', '/%24members/n1'],
      ['PUT', '/$members/n1'],
      ['DELETE', '/$members/n2'],
      ['POST', '/$members'],
    ] as const) {
      const body = method === 'PUT' || method === 'POST' ? { headers: { ...open, 'content-type': 'application/json' }, payload: '{"id":"n1","state":"removed"}' } : { headers: open };
      const r = await app.inject({ method, url, ...body });
      expect([r.statusCode, r.json().code], `${method} ${url}`).toEqual([400, 'REPLICA_ERR_TABLE_INVALID']);
    }
    expect(node.store.get(MEMBERS_TABLE, 'n1')).toMatchObject({ state: 'active' });
    expect(node.store.get(MEMBERS_TABLE, 'n2')).toMatchObject({ state: 'active' });
  });

  it('answers 409 on a node without replication', async () => {
    const store = Store.open({ path: join(dir.path, 'standalone'), nodeName: 'standalone', pruneIntervalMs: 0 });
    const standalone = buildApp(testConfig({ ADMIN_TOKEN: ADMIN }), { store });
    try {
      const r = await standalone.inject({ method: 'POST', url: '/cluster/members', headers: { ...auth, 'content-type': 'application/json' }, payload: { name: 'n2', address: 'h:1' } });
      expect([r.statusCode, r.json().code]).toEqual([409, 'REPLICA_ERR_MEMBERSHIP_UNAVAILABLE']);
      const list = await standalone.inject({ method: 'GET', url: '/cluster/members', headers: auth });
      expect(list.json()).toEqual({ members: [] });
      expect((await standalone.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    } finally {
      await standalone.close();
      await store.close();
    }
  });

  it('is driven from a shell by replica-admin, with exit codes that tell refused from unreachable', async () => {
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const cli = fileURLToPath(new URL('../dist/admin-cli.js', import.meta.url));
    const run = (args: string[], env: Record<string, string> = { ADMIN_TOKEN: ADMIN }) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        execFile(process.execPath, [cli, '--url', address, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env } }, (error, out, err) =>
          resolve({ code: error ? Number(error.code) : 0, out, err }),
        );
      });
    const list = await run(['members']);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toMatch(/^n1 {2}active {2}127\.0\.0\.1:19800 .* by n1 {2}connected$/m);
    expect((await run(['add', 'n3', '127.0.0.1:9803'])).code).toBe(0);
    const twice = await run(['add', 'n3', '127.0.0.1:9803']);
    expect([twice.code, twice.err]).toEqual([1, expect.stringContaining('409 REPLICA_ERR_MEMBER_EXISTS: n3 is a member already')]);
    const removed = await run(['remove', 'n3', '--json']);
    expect(removed.code).toBe(0);
    expect(JSON.parse(removed.out)).toMatchObject({ name: 'n3', state: 'removed' });
    expect((await run(['members'], { ADMIN_TOKEN: 'wrong-token-0123456789' })).err).toContain('401 REPLICA_ERR_ADMIN_AUTH_REQUIRED');
    expect((await run(['members'], {})).code).toBe(2);
    expect((await run(['promote', 'n2'])).code).toBe(2);
    expect((await run(['remove'])).code).toBe(2);
    expect((await run(['--bogus'])).code).toBe(2);
    const help = await run(['--help']);
    expect([help.code, help.out]).toEqual([0, expect.stringContaining('usage: replica-admin')]);
    const unreachable = await new Promise<{ code: number; err: string }>((resolve) => {
      execFile(process.execPath, [cli, '--url', 'http://127.0.0.1:1', '--token', ADMIN, 'members'], (error, _out, err) => resolve({ code: Number(error?.code ?? 0), err }));
    });
    expect([unreachable.code, unreachable.err]).toEqual([3, expect.stringContaining('cannot reach http://127.0.0.1:1')]);
  });
});

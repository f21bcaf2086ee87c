import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '@replica/storage';
import { ConfigError, MEMBERS_TABLE, silentLogger } from '@replica/transport-api';
import { freePort } from '@replica/transport-api/ports';
import { eventually } from '@replica/transport-api/testing';
import { plexusTransport, type PlexusTransport } from '@replica/transport-plexus';
import { createCertificateAuthority, createCertificateRequest, createNodeCertificate, type CertificateAuthority } from '@replica/certs';
import { buildApp } from '../src/app.js';
import type { Config } from '../src/config.js';
import { JoinSigner } from '../src/join.js';
import { Membership } from '../src/membership.js';
import { tempDir, testConfig } from './helpers.js';

const ADMIN = 'admin-token-0123456789';

describe('joining with a certificate request', () => {
  const dir = tempDir('replica-join-');
  const stops: (() => Promise<void>)[] = [];
  let ca: CertificateAuthority;
  let caFile: string;
  let caKeyFile: string;
  let app: FastifyInstance;
  let store: Store;
  let transport: PlexusTransport;
  const post = async (url: string, body: unknown, admin = true) => {
    const r = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...(admin ? { authorization: `Bearer ${ADMIN}` } : {}) }, payload: JSON.stringify(body) });
    return { status: r.statusCode, body: r.json() as Record<string, unknown> };
  };

  /** Starts n1 (a real store and plexus transport) behind the app, with `signer`. */
  const startN1 = async (name: string, signer: JoinSigner | undefined) => {
    const creds = await createNodeCertificate(ca, { name: 'n1' });
    const s = Store.open({ path: join(dir.path, name), nodeName: 'n1', pruneIntervalMs: 0 });
    const t = plexusTransport({ listen: { host: '127.0.0.1', port: 0 }, peers: [], tls: { ca: ca.cert, ...creds } });
    const membership = new Membership(s, t, { name: 'n1', address: '127.0.0.1:1' }, silentLogger);
    await membership.start();
    await t.start(s);
    const config: Config = { ...testConfig({ ADMIN_TOKEN: ADMIN }), nodeName: 'n1' };
    const a = buildApp(config, { store: s, transport: t, membership, signer });
    await a.ready();
    stops.push(async () => {
      await a.close();
      membership.stop();
      await t.stop();
      await s.close();
    });
    return { app: a, store: s, transport: t };
  };

  beforeAll(async () => {
    ca = await createCertificateAuthority('join-test-ca');
    caFile = join(dir.path, 'ca.crt');
    caKeyFile = join(dir.path, 'ca.key');
    writeFileSync(caFile, ca.cert);
    writeFileSync(caKeyFile, ca.key);
    ({ app, store, transport } = await startN1('n1', JoinSigner.fromFiles(caFile, caKeyFile)));
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    dir.remove();
  });

  it('is off without TLS_CA_KEY, and says so', async () => {
    const off = await startN1('off', undefined);
    const token = await off.app.inject({ method: 'POST', url: '/cluster/join-tokens', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, payload: '{"name":"n4"}' });
    expect([token.statusCode, token.json().code]).toEqual([403, 'REPLICA_ERR_JOIN_DISABLED']);
    const joined = await off.app.inject({ method: 'POST', url: '/cluster/join', headers: { 'content-type': 'application/json' }, payload: '{"token":"x","csr":"y","address":"h:1"}' });
    expect([joined.statusCode, joined.json().code]).toEqual([403, 'REPLICA_ERR_JOIN_DISABLED']);
  });

  it('refuses a CA key that belongs to no CA in the file, or is no key', async () => {
    const other = await createCertificateAuthority('other');
    const otherKey = join(dir.path, 'other.key');
    writeFileSync(otherKey, other.key);
    expect(() => JoinSigner.fromFiles(caFile, otherKey)).toThrow(ConfigError);
    expect(() => JoinSigner.fromFiles(caFile, otherKey)).toThrow(/belongs to no CA certificate in TLS_CA \(1 there\)/);
    expect(() => JoinSigner.fromFiles(caFile, caFile)).toThrow(/TLS_CA_KEY/);
    // A bundle with an old and a new CA: the key picks its own.
    const bundle = join(dir.path, 'bundle.crt');
    writeFileSync(bundle, other.cert + ca.cert);
    expect(JoinSigner.fromFiles(bundle, caKeyFile)).toBeInstanceOf(JoinSigner);
  });

  it('issues tokens only to the admin, for a valid name that is no member', async () => {
    const before = store.tables()[MEMBERS_TABLE];
    expect((await post('/cluster/join-tokens', { name: 'n4' }, false)).body['code']).toBe('REPLICA_ERR_ADMIN_AUTH_REQUIRED');
    for (const [body, status, code] of [
      [{ name: 'bad name' }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      [{ name: 'n4', ttlSeconds: 0 }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      [{ name: 'n4', ttlSeconds: 86401 }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      [{ name: 'n4', ttlSeconds: '60' }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      [{ name: 'n4', role: 'x' }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      [{ name: 'n1' }, 409, 'REPLICA_ERR_MEMBER_EXISTS'],
    ] as const) {
      const r = await post('/cluster/join-tokens', body);
      expect([r.status, r.body['code']], JSON.stringify(body)).toEqual([status, code]);
    }
    expect(store.tables()[MEMBERS_TABLE]).toEqual(before);
  });

  it('signs a request presented with a valid token once, adds the node, and the node then connects', async () => {
    const issued = await post('/cluster/join-tokens', { name: 'n4' });
    expect(issued.status).toBe(201);
    const token = issued.body['token'] as string;
    // Prefixed: a bare base64url token starts with '-' one time in 64, and a shell
    // command line (replica-admin join <token>) then takes it for an option.
    expect(token).toMatch(/^rjt_[A-Za-z0-9_-]{43}$/);
    expect(issued.body).toMatchObject({ name: 'n4', expiresAt: expect.any(String) });
    const n4 = await createCertificateRequest('n4');
    const n5 = await createCertificateRequest('n5');
    const port = await freePort('127.0.0.1');
    const address = `127.0.0.1:${port}`;
    const before = store.tables()[MEMBERS_TABLE];
    for (const [what, body, status, code] of [
      ['an unknown token', { token: 'nope', csr: n4.csr, address }, 401, 'REPLICA_ERR_JOIN_TOKEN_INVALID'],
      ['no token', { csr: n4.csr, address }, 401, 'REPLICA_ERR_JOIN_TOKEN_INVALID'],
      ['a request for another name', { token, csr: n5.csr, address }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['no request', { token, address }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['a request that is no PEM', { token, csr: 'hello', address }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['a request whose signature fails', { token, csr: tamper(n4.csr), address }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['no address', { token, csr: n4.csr }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
      ['a bad address', { token, csr: n4.csr, address: 'nowhere' }, 400, 'REPLICA_ERR_MEMBER_INVALID'],
    ] as const) {
      const r = await post('/cluster/join', body, false);
      expect([r.status, r.body['code']], what).toEqual([status, code]);
    }
    // None of those used the token up or changed the list.
    expect(store.tables()[MEMBERS_TABLE]).toEqual(before);

    const joined = await post('/cluster/join', { token, csr: n4.csr, address }, false);
    expect(joined.status).toBe(201);
    const cert = new X509Certificate(joined.body['certificate'] as string);
    expect(cert.subject).toBe('CN=n4');
    expect(cert.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(n4.key))).toBe(true);
    expect(joined.body['ca']).toBe(ca.cert);
    expect(joined.body['member']).toMatchObject({ name: 'n4', address, state: 'active', changedBy: 'n1' });
    const again = await post('/cluster/join', { token, csr: n4.csr, address }, false);
    expect([again.status, again.body['code']]).toEqual([401, 'REPLICA_ERR_JOIN_TOKEN_INVALID']);

    // The new node, with its signed certificate and the CA it was given, is accepted by n1 (which dials it).
    const s4 = Store.open({ path: join(dir.path, 'n4'), nodeName: 'n4', pruneIntervalMs: 0 });
    const t4 = plexusTransport({
      listen: { host: '127.0.0.1', port },
      peers: [{ name: 'n1', ...(transport.address() as { host: string; port: number }) }],
      tls: { ca: joined.body['ca'] as string, cert: joined.body['certificate'] as string, key: n4.key },
    });
    await t4.start(s4);
    stops.push(async () => {
      await t4.stop();
      await s4.close();
    });
    await eventually(() => transport.status().peers.some((p) => p.name === 'n4' && p.connected), 10_000, () => JSON.stringify(transport.status().peers));
    expect(t4.status().peers.find((p) => p.name === 'n1')?.connected).toBe(true);
  });

  it('refuses an expired token', async () => {
    const issued = await post('/cluster/join-tokens', { name: 'n6', ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const r = await post('/cluster/join', { token: issued.body['token'], csr: (await createCertificateRequest('n6')).csr, address: '127.0.0.1:9806' }, false);
    expect([r.status, r.body['code']]).toEqual([401, 'REPLICA_ERR_JOIN_TOKEN_INVALID']);
  });

  it('works from a shell: replica-admin join-token and join, replica-certs request', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const run = (bin: string, args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        execFile(process.execPath, [bin, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env } }, (error, out, err) => resolve({ code: error ? Number(error.code) : 0, out, err }));
      });
    const adminCli = fileURLToPath(new URL('../dist/admin-cli.js', import.meta.url));
    const certsCli = fileURLToPath(import.meta.resolve('@replica/certs').replace(/index\.js$/, 'cli.js'));
    const req = await run(certsCli, ['request', '--name', 'n7', '--out', dir.path]);
    expect(req.code, req.err).toBe(0);
    const token = await run(adminCli, ['--url', url, 'join-token', 'n7', '--ttl', '60'], { ADMIN_TOKEN: ADMIN });
    expect(token.code, token.err).toBe(0);
    const certOut = join(dir.path, 'n7.crt');
    const caOut = join(dir.path, 'n7-ca.crt');
    const joined = await run(adminCli, ['--url', url, 'join', token.out.trim(), join(dir.path, 'n7.csr'), '127.0.0.1:9807', '--cert-out', certOut, '--ca-out', caOut]);
    expect([joined.code, joined.out], joined.err).toEqual([0, `joined as n7: wrote ${certOut} and ${caOut}\n`]);
    const cert = new X509Certificate(readFileSync(certOut));
    expect(cert.subject).toBe('CN=n7');
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(join(dir.path, 'n7.key'), 'utf8')))).toBe(true);
    expect(readFileSync(caOut, 'utf8')).toBe(ca.cert);
    const reused = await run(adminCli, ['--url', url, 'join', token.out.trim(), join(dir.path, 'n7.csr'), '127.0.0.1:9807', '--cert-out', certOut, '--ca-out', caOut]);
    expect([reused.code, reused.err]).toEqual([1, expect.stringContaining('401 REPLICA_ERR_JOIN_TOKEN_INVALID')]);
    // An operator without TLS_CA_KEY on the nodes signs with replica-certs sign.
    const signed = await run(certsCli, ['sign', '--csr', join(dir.path, 'n7.csr'), '--ca-dir', dir.path]);
    expect(signed.code, signed.err).toBe(0);
    expect(new X509Certificate(signed.out).verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    const bad = await run(certsCli, ['sign', '--csr', caFile, '--ca-dir', dir.path]);
    expect([bad.code, bad.err]).toEqual([1, expect.stringContaining('not a PEM certificate request')]);
  });
});

/** The request with one byte of its signature changed. */
function tamper(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 5] = (der[der.length - 5] as number) ^ 0xff;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
}

// Security checks against running multi-process clusters: every intruder is refused,
// counted, and changes no data anywhere.
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { connect as natsConnect } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '@replica/cluster';
import { createCertificateAuthority, createNodeCertificate } from '@replica/certs';
import { checkConverged, insertLoad, sleep, status } from './lib/harness.js';

/** A would-be peer frame: length prefix, then bytes claiming to carry a batch. */
const FAKE_FRAME = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('BATCH{"id":"intruder"}!!')]);

/** Connects, sends a fake frame as soon as it can, and resolves when the server hung up. */
function intrude(open: () => import('node:net').Socket): Promise<{ gotData: boolean }> {
  return new Promise((resolve) => {
    const s = open();
    let gotData = false;
    s.on('data', () => (gotData = true));
    s.on('error', () => {});
    s.on('secureConnect', () => s.write(FAKE_FRAME));
    s.on('connect', () => {
      if (!('encrypted' in s)) s.write(FAKE_FRAME);
    });
    s.on('close', () => resolve({ gotData }));
    setTimeout(() => s.destroy(), 5000);
  });
}

/** Tables (counts and digests) of every node, as one comparable string. */
async function snapshot(c: Cluster): Promise<string[]> {
  return Promise.all(c.nodes.map(async (n) => JSON.stringify((await status(n.url)).tables)));
}

async function rejected(url: string, reason: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^replica_peer_connections_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('security', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('plexus refuses another CA, an expired certificate, an unknown name and plain TCP; no data changes', async () => {
    const ca = await createCertificateAuthority();
    const c = (cluster = await startCluster({ nodes: 3, transport: 'plexus', ca }));
    const seed = insertLoad(c, { targets: () => [0, 1, 2], prefix: 's', concurrency: 6, maxWrites: 120, maxMs: 20_000 });
    await seed.done;
    await checkConverged(c, { acked: seed.acked });
    const before = await snapshot(c);

    // n1 dials n2, so n1's view of n2 gives n2's peer address
    const s1 = (await status(c.nodes[0]?.url as string)) as unknown as { replication: { peers: { name: string; info: Record<string, string> }[] } };
    const [host, port] = (s1.replication.peers.find((p) => p.name === 'n2')?.info['address'] as string).split(':') as [string, string];
    const target = { host, port: Number(port) };
    const n2 = c.nodes[1]?.url as string;
    const tls = (o: ConnectionOptions) => () => tlsConnect({ ...target, ...o, ca: ca.cert, rejectUnauthorized: false, checkServerIdentity: () => undefined });

    const day = 24 * 3600_000;
    const otherCa = await createCertificateAuthority('intruder-ca');
    const cases: [string, () => import('node:net').Socket][] = [
      ['untrustedCertificate', tls({ ...(await createNodeCertificate(otherCa, { name: 'n1' })) })],
      ['expired', tls({ ...(await createNodeCertificate(ca, { name: 'n1', notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) })) })],
      ['unknownName', tls({ ...(await createNodeCertificate(ca, { name: 'mallory' })) })],
      ['notTls', () => tcpConnect(target)],
    ];
    for (const [reason, open] of cases) {
      const was = await rejected(n2, reason);
      const r = await intrude(open);
      expect(r.gotData, `${reason}: the intruder got no replication data`).toBe(false);
      const deadline = Date.now() + 5000;
      while ((await rejected(n2, reason)) === was && Date.now() < deadline) await sleep(50);
      expect(await rejected(n2, reason), `${reason} counted`).toBe(was + 1);
    }
    // The node counts a refusal before its log line reaches the file (pino writes asynchronously).
    const logged = () => readFileSync(c.nodes[1]?.logFile as string, 'utf8');
    const logDeadline = Date.now() + 5000;
    while (!cases.every(([reason]) => logged().includes(`"reason":"${reason}"`)) && Date.now() < logDeadline) await sleep(50);
    const log = logged();
    for (const [reason] of cases) expect(log, `${reason} logged`).toContain(`"reason":"${reason}"`);
    expect(await snapshot(c)).toEqual(before);
    // the real peers never noticed
    const after = insertLoad(c, { targets: () => [0, 1, 2], prefix: 't', concurrency: 6, maxWrites: 60, maxMs: 20_000 });
    await after.done;
    await checkConverged(c, { acked: [...seed.acked, ...after.acked] });
  });

  it('plexus rolls its CA over and rotates every certificate under writes, with no restart; a malformed file changes nothing', async () => {
    const ca1 = await createCertificateAuthority('ca-old');
    const c = (cluster = await startCluster({ nodes: 3, transport: 'plexus', ca: ca1 }));
    // Writes go to n1 and n2 throughout (n3 restarts at the end), and replicate to all three.
    const load = insertLoad(c, { targets: () => [0, 1], prefix: 'r', concurrency: 6, maxWrites: 4000, maxMs: 40_000 });
    const certs = join(c.dir, 'certs');
    const logOf = (i: number) => readFileSync(c.nodes[i]?.logFile as string, 'utf8');
    const count = (text: string, msg: string) => text.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length;
    const reloads = (i: number) => count(logOf(i), 'TLS files reloaded');
    /** Sends SIGHUP to every node and waits until each logged one more successful reload. */
    const hangupAll = async (nodes: readonly number[]) => {
      const before = nodes.map(reloads);
      for (const i of nodes) process.kill(c.nodes[i]?.pid as number, 'SIGHUP');
      const deadline = Date.now() + 10_000;
      while (nodes.some((i, k) => reloads(i) <= (before[k] as number)) && Date.now() < deadline) await sleep(50);
      for (const [k, i] of nodes.entries()) expect(reloads(i), `${c.nodes[i]?.name} reloaded`).toBeGreaterThan(before[k] as number);
    };
    await sleep(500);
    const ackedBefore = load.acked.length;

    // 1. Every node trusts the old and the new CA, each still with its old certificate.
    const ca2 = await createCertificateAuthority('ca-new');
    writeFileSync(join(certs, 'ca.crt'), `${ca1.cert}\n${ca2.cert}`);
    await hangupAll([0, 1, 2]);
    // 2. Every node takes a certificate of the new CA.
    for (const n of c.nodes) {
      const next = await createNodeCertificate(ca2, { name: n.name, hosts: ['localhost', '127.0.0.1'] });
      writeFileSync(join(certs, `${n.name}.key`), next.key);
      writeFileSync(join(certs, `${n.name}.crt`), next.cert);
    }
    await hangupAll([0, 1, 2]);
    // A malformed replacement: refused and logged with the reason; the node serves on with what it has.
    writeFileSync(join(certs, `${c.nodes[0]?.name}.crt`), 'not a certificate');
    process.kill(c.nodes[0]?.pid as number, 'SIGHUP');
    const refusedAt = Date.now() + 10_000;
    while (count(logOf(0), 'TLS files not reloaded: the material in use stays') === 0 && Date.now() < refusedAt) await sleep(50);
    expect(logOf(0)).toMatch(/"msg":"TLS files not reloaded: the material in use stays"/);
    expect(logOf(0)).toMatch(/the certificate cannot be read/);
    // 3. The old CA is dropped everywhere.
    writeFileSync(join(certs, 'ca.crt'), ca2.cert);
    await hangupAll([1, 2]);
    const ackedRotated = load.acked.length;
    expect(ackedRotated, 'writes were acknowledged while the material changed').toBeGreaterThan(ackedBefore);

    // New connections work with the new material only: n3 restarts from its files (new CA only).
    await c.kill(2);
    await c.restart(2);
    await c.waitConnected(20_000);
    await load.done;
    expect(load.acked.length, 'writes went on after the rotation').toBeGreaterThan(ackedRotated);
    expect(load.failed(), 'writes refused during the rotation').toBe(0);
    await checkConverged(c, { acked: load.acked });
    for (const n of c.nodes) {
      expect(await rejected(n.url, 'untrustedCertificate'), `${n.name} refused no peer`).toBe(0);
      expect(await rejected(n.url, 'refusedCertificate'), `${n.name} was refused by no peer`).toBe(0);
    }
  });

  it('nats nodes rotate their client certificates under writes with no restart; a malformed file changes nothing', async () => {
    const ca = await createCertificateAuthority('nats-rotation-ca');
    const c = (cluster = await startCluster({ nodes: 3, transport: 'nats', natsTls: true, ca, env: { CONFIRM_TIMEOUT_MS: '5000' } }));
    const load = insertLoad(c, { targets: () => [0, 1, 2], prefix: 'nr', concurrency: 6, maxWrites: 2000, maxMs: 30_000 });
    const certs = join(c.dir, 'certs');
    const logOf = (i: number) => readFileSync(c.nodes[i]?.logFile as string, 'utf8');
    const count = (text: string, msg: string) => text.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length;
    /**
     * The SHA-256 of the certificate node i's broker connection presents, as the
     * nats-server it is connected to sees it (a reconnect may pick any server of the
     * cluster: the client learns them all).
     */
    const presented = async (i: number): Promise<string | undefined> => {
      for (const server of c.natsServers) {
        const http = /http: "([^"]+)"/.exec(readFileSync(server.configFile, 'utf8'))?.[1];
        const connz = (await (await fetch(`http://${http}/connz?auth=1`)).json()) as { connections: { name?: string; tls_peer_certs?: { subject: string; cert_sha256: string }[] }[] };
        const mine = connz.connections.find((x) => x.name === `replica-${c.nodes[i]?.name}`);
        if (mine) return mine.tls_peer_certs?.find((p) => p.subject === `CN=${c.nodes[i]?.name}`)?.cert_sha256;
      }
      return undefined;
    };
    const sha256 = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
    const before = await Promise.all([0, 1, 2].map(presented));
    for (const [i, n] of c.nodes.entries()) expect(before[i], `${n.name} presents its certificate`).toBe(sha256(readFileSync(join(certs, `${n.name}.crt`), 'utf8')));
    await sleep(500);
    const ackedBefore = load.acked.length;

    const next = await Promise.all(c.nodes.map((n) => createNodeCertificate(ca, { name: n.name, hosts: ['localhost', '127.0.0.1'] })));
    for (const [i, n] of c.nodes.entries()) {
      writeFileSync(join(certs, `${n.name}.key`), (next[i] as { key: string }).key);
      writeFileSync(join(certs, `${n.name}.crt`), (next[i] as { cert: string }).cert);
    }
    const reloads = [0, 1, 2].map((i) => count(logOf(i), 'TLS files reloaded'));
    for (const n of c.nodes) process.kill(n.pid, 'SIGHUP');
    for (const i of [0, 1, 2]) {
      const deadline = Date.now() + 15_000;
      while (((await presented(i)) !== sha256((next[i] as { cert: string }).cert) || count(logOf(i), 'TLS files reloaded') <= (reloads[i] as number)) && Date.now() < deadline) await sleep(100);
      expect(await presented(i), `${c.nodes[i]?.name} reconnected with its new certificate`).toBe(sha256((next[i] as { cert: string }).cert));
    }
    // A malformed replacement is refused with the reason; the node keeps its connection and certificate.
    writeFileSync(join(certs, `${c.nodes[0]?.name}.crt`), 'not a certificate');
    process.kill(c.nodes[0]?.pid as number, 'SIGHUP');
    const refusedAt = Date.now() + 10_000;
    while (count(logOf(0), 'TLS files not reloaded: the material in use stays') === 0 && Date.now() < refusedAt) await sleep(50);
    expect(logOf(0)).toMatch(/"msg":"TLS files not reloaded: the material in use stays"/);
    expect(await presented(0)).toBe(sha256((next[0] as { cert: string }).cert));
    const ackedRotated = load.acked.length;
    expect(ackedRotated, 'writes were acknowledged while the certificates changed').toBeGreaterThan(ackedBefore);
    await load.done;
    expect(load.acked.length, 'writes went on after the rotation').toBeGreaterThan(ackedRotated);
    expect(load.failed(), 'writes refused during the rotation').toBe(0);
    await checkConverged(c, { acked: load.acked });
  });

  it('nats with auth refuses clients and routes without credentials; no data changes', async () => {
    const natsAuth = { user: 'replica', password: 'a-long-cluster-password' };
    const c = (cluster = await startCluster({ nodes: 3, transport: 'nats', natsAuth }));
    const seed = insertLoad(c, { targets: () => [0, 1, 2], prefix: 's', concurrency: 6, maxWrites: 120, maxMs: 20_000 });
    await seed.done;
    expect(seed.failed()).toBe(0);
    await checkConverged(c, { acked: seed.acked });
    const before = await snapshot(c);

    const url = new URL((c.natsServers[0]?.url as string).replace('nats://', 'http://'));
    const bare = `nats://${url.hostname}:${url.port}`;
    for (const creds of [{}, { user: 'replica', pass: 'wrong-password' }, { user: 'intruder', pass: 'a-long-cluster-password' }]) {
      const err = await natsConnect({ servers: bare, reconnect: false, timeout: 3000, ...creds }).then(
        async (nc) => {
          await nc.close();
          return undefined;
        },
        (e: { code?: string }) => e,
      );
      expect(err?.code, `connect with ${JSON.stringify(creds)}`).toBe('AUTHORIZATION_VIOLATION');
    }
    // a would-be server joining the cluster without the route credentials
    const config = readFileSync(c.natsServers[0]?.configFile as string, 'utf8');
    const route = /cluster \{[^}]*?listen: "([^:"]+):(\d+)"/s.exec(config);
    expect(route, 'route port in the config').not.toBeNull();
    const reply = await new Promise<string>((resolve) => {
      const s = tcpConnect({ host: route?.[1] as string, port: Number(route?.[2]) });
      let got = '';
      s.on('data', (d) => {
        got += d.toString();
        if (got.includes('INFO')) s.write('CONNECT {"verbose":false,"pedantic":false,"name":"intruder"}\r\nPING\r\n');
      });
      s.on('error', () => {});
      s.on('close', () => resolve(got));
      setTimeout(() => s.destroy(), 5000);
    });
    expect(reply).toMatch(/-ERR 'Authorization Violation'/);

    expect(await snapshot(c)).toEqual(before);
    const after = insertLoad(c, { targets: () => [0, 1, 2], prefix: 't', concurrency: 6, maxWrites: 60, maxMs: 20_000 });
    await after.done;
    expect(after.failed()).toBe(0);
    await checkConverged(c, { acked: [...seed.acked, ...after.acked] });
  });

  it('the REST API with API_TOKEN refuses missing and wrong tokens; no data changes', async () => {
    const token = 'a-token-of-at-least-16-chars';
    const c = (cluster = await startCluster({ nodes: 2, transport: 'plexus', env: { API_TOKEN: token } }));
    const ok = insertLoad(c, { targets: () => [0, 1], prefix: 's', concurrency: 4, maxWrites: 40, maxMs: 20_000, token });
    await ok.done;
    expect(ok.acked.length).toBe(40);
    await sleep(500);
    const before = await snapshot(c);
    const url = c.nodes[0]?.url as string;
    const body = JSON.stringify({ id: 'intruder', x: 1 });
    const json = { 'content-type': 'application/json' };
    for (const auth of [undefined, 'Bearer wrong-token-wrong-token', `Basic ${Buffer.from(`x:${token}`).toString('base64')}`, token, `Bearer ${token}x`, 'Bearer ']) {
      const headers = auth === undefined ? json : { ...json, authorization: auth };
      for (const [method, path] of [['POST', '/items'], ['PUT', '/items/intruder'], ['DELETE', `/items/${ok.acked[0]}`], ['GET', `/items/${ok.acked[0]}`]] as const) {
        const r = await fetch(`${url}${path}`, { method, headers, ...(method === 'POST' || method === 'PUT' ? { body } : {}) });
        const out = (await r.json()) as { code?: string };
        expect([r.status, out.code], `${method} ${path} with ${auth}`).toEqual([401, 'REPLICA_ERR_AUTH_REQUIRED']);
      }
    }
    expect(await snapshot(c)).toEqual(before);
    await checkConverged(c, { acked: ok.acked, token });
  });
});

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '@replica/storage';
import { ConfigError, TransportStateError } from '@replica/transport-api';
import { createCertificateAuthority, createNodeCertificate, type CertificateAuthority } from '@replica/certs';
import { converged, eventually, startSuiteCluster, suiteNode, type SuiteCluster } from '@replica/transport-api/testing';
import { freePort, natsServerConfig, natsTransport, startNatsCluster, startNatsServer, type NatsServer, type NatsTlsFiles, type NatsTransport } from '../src/index.js';

/** Certificate authorities made by {@link makeCa}, by name. */
const authorities = new Map<string, CertificateAuthority>();

/** A CA (EC P-256) whose certificate and key are `<dir>/<name>.crt` and `.key`. */
async function makeCa(dir: string, name: string): Promise<void> {
  const ca = await createCertificateAuthority(name, 2);
  authorities.set(name, ca);
  writeFileSync(join(dir, `${name}.crt`), ca.cert);
  writeFileSync(join(dir, `${name}.key`), ca.key);
}

/** A certificate signed by CA `ca` (server and client auth, SANs `name`, localhost and 127.0.0.1), in `<dir>/<name>.crt` and `.key`. */
async function makeCert(dir: string, ca: string, name: string): Promise<{ cert: string; key: string }> {
  const issued = await createNodeCertificate(authorities.get(ca) as CertificateAuthority, { name });
  const f = (ext: string) => join(dir, `${name}.${ext}`);
  writeFileSync(f('crt'), issued.cert);
  writeFileSync(f('key'), issued.key);
  return { cert: f('crt'), key: f('key') };
}

/** Fields of the first line (INFO) a NATS client port sends; fails after 5 s. */
function infoOf(port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => (s.destroy(), reject(new Error(`no INFO from port ${port}`))), 5000);
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      const end = got.indexOf('\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      s.destroy();
      resolve(JSON.parse(got.slice(0, end).replace(/^INFO /, '')) as Record<string, unknown>);
    });
    s.on('error', (err) => (clearTimeout(timer), reject(err)));
  });
}

/** The TLS version a handshake with `port` agrees on; fails after 5 s. */
function tlsVersionOf(port: number, files: { ca: string; cert: string; key: string }): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) });
    const timer = setTimeout(() => (s.destroy(), reject(new Error(`no TLS handshake with port ${port}`))), 5000);
    s.on('secureConnect', () => {
      clearTimeout(timer);
      resolve(s.getProtocol());
      s.destroy();
    });
    s.on('error', (err) => (clearTimeout(timer), reject(err)));
  });
}

const portIn = (config: string, re: RegExp) => Number(re.exec(config)?.[1]);

// One PKI and one 2-server cluster (client TLS with verify, TLS routes) with two nodes
// for the whole file; every test leaves them as they were.
describe('nats transport over TLS', () => {
  let root = '';
  let pki = '';
  let good: NatsTlsFiles = {};
  let ca = '';
  let otherCa = '';
  let cluster: (SuiteCluster & { nodes: ReturnType<typeof suiteNode<Store, NatsTransport>>[] }) | undefined;
  let servers: NatsServer[] = [];
  let stopServers = async () => {};

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'replica-nats-tls-'));
    pki = join(root, 'pki');
    mkdirSync(pki);
    await makeCa(pki, 'ca');
    await makeCa(pki, 'other-ca');
    ca = join(pki, 'ca.crt');
    otherCa = join(pki, 'other-ca.crt');
    const serverCerts = { s0: await makeCert(pki, 'ca', 's0'), s1: await makeCert(pki, 'ca', 's1') };
    const node = await makeCert(pki, 'ca', 'node');
    good = { ca, ...node };
    const nats = await startNatsCluster({
      names: ['s0', 's1'],
      dir: join(root, 'nats'),
      tls: (name) => ({ ca, ...serverCerts[name as 's0' | 's1'], verify: true }),
      clusterTls: (name) => ({ ca, ...serverCerts[name as 's0' | 's1'] }),
    });
    servers = nats.servers;
    stopServers = nats.stop;
    cluster = await startSuiteCluster({
      size: 2,
      make: (i) => {
        const name = `n${i}`;
        const store = Store.open({ path: join(root, name), nodeName: name, pruneIntervalMs: 0 });
        const transport = natsTransport({ servers: (servers[i] as NatsServer).url, mode: 'per-write', placement: { cluster: 'replica', tag: `s${i}` }, discoverIntervalMs: 200, tls: good });
        return suiteNode(store, transport);
      },
      dataDir: (i) => join(root, `n${i}`),
      cleanup: async () => {},
    });
  });

  afterAll(async () => {
    await cluster?.teardown();
    await stopServers();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** An admin connection with the good client certificate. */
  const admin = (): Promise<NatsConnection> =>
    connect({ servers: (servers[0] as NatsServer).url, tls: { caFile: ca, certFile: good.cert as string, keyFile: good.key as string }, reconnect: false });

  /** Streams and their consumers, as the servers hold them. */
  const jetStreamNames = async (): Promise<Record<string, string[]>> => {
    const nc = await admin();
    try {
      const jsm = await nc.jetstreamManager();
      const out: Record<string, string[]> = {};
      for await (const si of jsm.streams.list()) {
        out[si.config.name] = [];
        for await (const ci of jsm.consumers.list(si.config.name)) out[si.config.name]?.push(ci.name);
      }
      return out;
    } finally {
      await nc.close();
    }
  };

  /**
   * Starts a node named `intruder` with `tls` against server s0 and returns its start()
   * error. Before, it commits a record locally, which would be its first publish. Checks
   * that it left nothing behind: no stream, no consumer, no record on the other nodes.
   */
  async function refusedStart(tls: NatsTlsFiles | undefined, serverLog: RegExp): Promise<TransportStateError> {
    const c = cluster as NonNullable<typeof cluster>;
    const logFile = (servers[0] as NatsServer).logFile;
    const before = { js: await jetStreamNames(), log: readFileSync(logFile, 'utf8').length };
    const dir = mkdtempSync(join(root, 'intruder-'));
    const store = Store.open({ path: dir, nodeName: 'intruder', pruneIntervalMs: 0 });
    const t = natsTransport({ servers: (servers[0] as NatsServer).url, mode: 'per-write', ...(tls ? { tls } : {}) });
    try {
      await store.put('t', { id: 'from-intruder' });
      const err = await t.start(store).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TransportStateError);
      // s0 says why it refused the handshake; it logs that just after sending the TLS
      // alert the client acts on, so the line may come a moment after start() failed.
      const newLog = () => readFileSync(logFile, 'utf8').slice(before.log);
      await eventually(() => serverLog.test(newLog()), 5000, newLog);
      // No stream REPLICA_intruder and no consumer of it: nothing it could publish or
      // read. The peers hold nothing of it, and still replicate between themselves.
      expect(await jetStreamNames()).toEqual(before.js);
      expect(before.js['REPLICA_intruder']).toBeUndefined();
      await c.nodes[0]?.put('t', { id: `after-${Date.now()}` });
      await converged(c.nodes, 15_000);
      for (const n of c.nodes) expect(n.get('t', 'from-intruder')).toBeUndefined();
      return err as TransportStateError;
    } finally {
      await t.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('replicates writes both ways through servers that verify client certificates and encrypt their routes', async () => {
    const c = cluster as NonNullable<typeof cluster>;
    expect(servers.map((s) => s.url)).toEqual([expect.stringMatching(/^tls:\/\/127\.0\.0\.1:\d+$/), expect.stringMatching(/^tls:\/\/127\.0\.0\.1:\d+$/)]);
    await c.nodes[0]?.put('t', { id: 'a' });
    await c.nodes[1]?.put('t', { id: 'b' });
    await converged(c.nodes, 15_000);
    expect(c.nodes[1]?.get('t', 'a')).toMatchObject({ id: 'a' });
    expect(c.nodes[0]?.get('t', 'b')).toMatchObject({ id: 'b' });
    // n0's stream lives on s0 and n1 reads it through s1, so the write crossed a route.
    expect((await jetStreamNames())['REPLICA_n0']).toEqual(['n1']);
    for (const s of servers) {
      const config = readFileSync(s.configFile, 'utf8');
      // clients: TLS required and client certificates verified
      expect(await infoOf(portIn(config, /^listen: "[^:]+:(\d+)"/m))).toMatchObject({ tls_required: true, tls_verify: true });
      // routes: TLS from the first byte, and the route to the other server is up
      expect(await tlsVersionOf(portIn(config, /cluster \{[^}]*?listen: "[^:]+:(\d+)"/s), { ca, cert: good.cert as string, key: good.key as string })).toMatch(/^TLSv1\.[23]$/);
      const routez = (await (await fetch(`http://127.0.0.1:${portIn(config, /^http: "[^:]+:(\d+)"/m)}/routez`)).json()) as { num_routes: number };
      expect(routez.num_routes).toBeGreaterThanOrEqual(1);
      // both nodes' connections are TLS connections
      const connz = (await (await fetch(`http://127.0.0.1:${portIn(config, /^http: "[^:]+:(\d+)"/m)}/connz`)).json()) as { connections: { name?: string; tls_version?: string }[] };
      const own = connz.connections.filter((x) => x.name?.startsWith('replica-'));
      expect(own.length).toBeGreaterThan(0);
      for (const x of own) expect(x.tls_version, x.name).toMatch(/^1\.[23]$/);
    }
  });

  it('fails start() when its CA did not sign the server certificate, and writes nothing', async () => {
    const err = await refusedStart({ ca: otherCa, cert: good.cert as string, key: good.key as string }, /TLS handshake error/);
    expect(err.message).toMatch(/^cannot connect to NATS at tls:\/\/127\.0\.0\.1:\d+: the server's TLS certificate is not trusted \(unable to verify the first certificate\): it is not signed by the CA in .*other-ca\.crt$/);
    expect(err.cause).toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('fails start() without a client certificate when the server verifies clients, and writes nothing', async () => {
    const err = await refusedStart({ ca }, /TLS handshake error: tls: client didn't provide a certificate/);
    expect(err.message).toMatch(/: the server requires a TLS client certificate \(TLS alert "bad certificate"\) and this node has none$/);
    // The nats client would only time out here, then retry the other server that s0
    // announced, and s0 again, forever: start() checks the handshake itself first.
    expect(err.cause).toMatchObject({ code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' });
  });

  it('fails start() with a client certificate from another CA, and writes nothing', async () => {
    const rogue = await makeCert(pki, 'other-ca', 'rogue');
    const err = await refusedStart({ ca, ...rogue }, /TLS handshake error: tls: failed to verify client certificate/);
    expect(err.message).toMatch(/: the server refused this node's TLS client certificate .*rogue\.crt \(TLS alert "bad certificate"\): it must be signed by a CA the server trusts/);
  });

  it('fails start() with a clear message without a CA, for half a client certificate, a missing file, a key of another certificate, or a server without TLS', async () => {
    const plain = join(root, 'plain');
    const server = await startNatsServer({ name: 'plain', clientPort: await freePort(), httpPort: await freePort(), storeDir: join(plain, 'js'), dir: plain });
    const store = Store.open({ path: join(plain, 'store'), nodeName: 'solo', pruneIntervalMs: 0 });
    try {
      const startError = async (url: string, tls: NatsTlsFiles | undefined) => {
        const t = natsTransport({ servers: url, mode: 'batched', ...(tls ? { tls } : {}) });
        const err = await t.start(store).then(() => undefined, (e: unknown) => e);
        await t.stop();
        expect(err).toBeInstanceOf(TransportStateError);
        return (err as Error).message;
      };
      // without TLS settings, the client still uses TLS when the server requires it
      expect(await startError((servers[0] as NatsServer).url, undefined)).toMatch(/: the server's TLS certificate is not trusted \(unable to verify the first certificate\): no CA file is set, and no CA in Node's trust store signed it$/);
      expect(await startError(server.url, { ca })).toMatch(/: the server does not offer TLS, but this node is set to use TLS$/);
      expect(await startError((servers[0] as NatsServer).url, { ca, cert: good.cert as string })).toMatch(/: tls\.cert and tls\.key go together, but only tls\.cert is set$/);
      expect(await startError((servers[0] as NatsServer).url, { ...good, ca: join(pki, 'missing.crt') })).toMatch(/: cannot set up TLS: .*missing\.crt doesn't exist$/);
      expect(await startError((servers[0] as NatsServer).url, { ...good, key: join(pki, 's0.key') })).toMatch(/: cannot set up TLS: .*key values mismatch$/);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  it('logs why it cannot reconnect once its server refuses its client certificate, and ships the writes made meanwhile once that is fixed', async () => {
    const dir = join(root, 'reconnect');
    const serverCert = await makeCert(pki, 'ca', 'solo');
    const opts = { name: 'solo', clientPort: await freePort(), httpPort: await freePort(), storeDir: join(dir, 'js'), dir };
    let server = await startNatsServer({ ...opts, tls: { ca, ...serverCert, verify: true } });
    const store = Store.open({ path: join(dir, 'store'), nodeName: 'solo', pruneIntervalMs: 0 });
    const lines: { level: string; obj: object; msg: string }[] = [];
    const keep = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
    const t = natsTransport({ servers: server.url, mode: 'per-write', tls: good }, { logger: { debug() {}, info: keep('info'), warn: keep('warn'), error: keep('error') } });
    const published = () => t.status().counters?.['published'] ?? 0;
    try {
      await t.start(store);
      await store.put('t', { id: 'before' });
      await eventually(() => published() === 1, 10_000, () => JSON.stringify(t.status().counters));
      // The server comes back trusting another CA for client certificates: the client
      // itself would only keep retrying; the transport says why after 5 s.
      await server.stop();
      server = await startNatsServer({ ...opts, tls: { ca: otherCa, ...serverCert, verify: true } });
      await store.put('t', { id: 'during' });
      const refused = () => lines.find((l) => l.msg === 'nats: cannot reconnect: a TLS handshake fails');
      await eventually(() => refused() !== undefined, 20_000, () => JSON.stringify(lines));
      expect(refused()?.level).toBe('error');
      expect(refused()?.obj).toMatchObject({ reason: expect.stringMatching(/the server refused this node's TLS client certificate .*node\.crt \(TLS alert "bad certificate"\)/) });
      expect(t.status().counters).toMatchObject({ tlsRefusals: 1, disconnects: 1, reconnects: 0 });
      expect(published()).toBe(1);
      // Trusted again: it reconnects and ships the write it committed while refused.
      await server.stop();
      server = await startNatsServer({ ...opts, tls: { ca, ...serverCert, verify: true } });
      await eventually(() => published() === 2, 20_000, () => JSON.stringify(t.status().counters));
      expect(t.status().counters).toMatchObject({ reconnects: 1, tlsRefusals: 1 });
      expect(lines.some((l) => l.msg === 'nats: reconnected')).toBe(true);
    } finally {
      await t.stop();
      await store.close();
      await server.stop();
    }
  });

  it('uses rotated TLS files after reloadTls() without a restart, and refuses files it cannot use, keeping its connection', async () => {
    const dir = join(root, 'reload');
    mkdirSync(dir, { recursive: true });
    const serverCert = await makeCert(pki, 'ca', 'reload-server');
    // The server trusts client certificates of both CAs (a rollover); the node starts with one of the first.
    const clientCas = join(dir, 'client-cas.crt');
    writeFileSync(clientCas, `${readFileSync(ca, 'utf8')}\n${readFileSync(otherCa, 'utf8')}`);
    const server = await startNatsServer({ name: 'reload', clientPort: await freePort(), httpPort: await freePort(), storeDir: join(dir, 'js'), dir, tls: { ca: clientCas, ...serverCert, verify: true } });
    const files = { ca, cert: join(dir, 'node.crt'), key: join(dir, 'node.key') };
    writeFileSync(files.cert, readFileSync(good.cert as string));
    writeFileSync(files.key, readFileSync(good.key as string));
    const store = Store.open({ path: join(dir, 'store'), nodeName: 'solo', pruneIntervalMs: 0 });
    const t = natsTransport({ servers: server.url, mode: 'per-write', tls: files });
    const counter = (name: string) => t.status().counters[name] ?? 0;
    try {
      await t.start(store);
      await store.put('t', { id: 'before' });
      await eventually(() => counter('published') === 1, 10_000, () => JSON.stringify(t.status().counters));

      // A client certificate of the other CA: checked, then the client reconnects with it.
      const next = await createNodeCertificate(authorities.get('other-ca') as CertificateAuthority, { name: 'node' });
      writeFileSync(files.key, next.key);
      writeFileSync(files.cert, next.cert);
      await t.reloadTls();
      await eventually(() => counter('reconnects') === 1, 10_000, () => JSON.stringify(t.status().counters));
      await store.put('t', { id: 'after-rotation' });
      await eventually(() => counter('published') === 2, 10_000, () => JSON.stringify(t.status().counters));

      // Unusable files, and a certificate the server refuses: said why, no reconnect.
      writeFileSync(files.cert, 'not a certificate');
      await expect(t.reloadTls()).rejects.toThrow(ConfigError);
      const foreign = await createNodeCertificate(await createCertificateAuthority('third-ca', 2), { name: 'node' });
      writeFileSync(files.key, foreign.key);
      writeFileSync(files.cert, foreign.cert);
      await expect(t.reloadTls()).rejects.toThrow(/the server refused this node's TLS client certificate/);
      expect(counter('disconnects')).toBe(1);
      await store.put('t', { id: 'after-refusals' });
      await eventually(() => counter('published') === 3, 10_000, () => JSON.stringify(t.status().counters));
      expect(counter('reconnects')).toBe(1);
    } finally {
      await t.stop();
      await store.close();
      await server.stop();
    }
    await expect(t.reloadTls()).rejects.toThrow(/only while the transport runs/);
  });

  it('writes server configs with client verification and route TLS, and without them as before', () => {
    const base = { name: 'n1', clientPort: 4222, httpPort: 8222, clusterPort: 6222, routes: ['nats-route://127.0.0.1:6222'], storeDir: '/data/n1' };
    const files = { ca: '/etc/nats/ca.crt', cert: '/etc/nats/n1.crt', key: '/etc/nats/n1.key' };
    const text = natsServerConfig({ ...base, tls: { ...files, verify: true }, clusterTls: files });
    expect(text).toContain('\ntls { ca_file: "/etc/nats/ca.crt", cert_file: "/etc/nats/n1.crt", key_file: "/etc/nats/n1.key", verify: true }\n');
    expect(text).toMatch(/cluster \{\n[^}]*\n {2}tls \{ ca_file: "\/etc\/nats\/ca\.crt", cert_file: "\/etc\/nats\/n1\.crt", key_file: "\/etc\/nats\/n1\.key" \}\n {2}routes/);
    expect(natsServerConfig({ ...base, tls: files })).toContain('\ntls { ca_file: "/etc/nats/ca.crt", cert_file: "/etc/nats/n1.crt", key_file: "/etc/nats/n1.key" }\n');
    expect(natsServerConfig(base)).not.toContain('tls');
  });
});

import { connect as tcpConnect } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, converged } from '@replica/transport-api/testing';
import { createCertificateAuthority, createNodeCertificate } from '@replica/certs';
import { plexusCluster, type PlexusCluster } from './helpers.js';

/** Connects as a would-be peer; resolves when the server closed the connection. */
function rogue(opts: ConnectionOptions): Promise<{ gotData: boolean; error: string }> {
  return new Promise((resolve) => {
    const s = connect({ ...opts, checkServerIdentity: () => undefined, rejectUnauthorized: false });
    let gotData = false;
    let error = '';
    s.on('data', () => (gotData = true));
    s.on('error', (e) => (error = (e as { code?: string }).code ?? e.message));
    s.on('close', () => resolve({ gotData, error }));
    setTimeout(() => s.destroy(), 5000);
  });
}

describe('plexus mutual TLS', () => {
  let c: PlexusCluster;
  afterEach(() => c?.teardown());

  const rejected = (reason: string) => c.nodes[1]?.transport.status().refused[reason] ?? 0;
  const target = () => ({ host: '127.0.0.1', port: c.peers[1]?.port as number });
  async function stillReplicates() {
    await c.nodes[0]?.put('t', { id: `after-${Date.now()}-${Math.random()}` });
    await converged(c.nodes, 10_000);
    expect(c.nodes[0]?.transport.status().peers[0]?.connected).toBe(true);
  }

  it('refuses a certificate signed by another CA, and the cluster is unaffected', async () => {
    c = await plexusCluster(2);
    const otherCa = await createCertificateAuthority('evil-ca');
    const forged = await createNodeCertificate(otherCa, { name: 'n0' });
    const r = await rogue({ ...target(), ca: c.certs.ca.cert, ...forged });
    expect(r.gotData).toBe(false);
    await eventually(() => rejected('untrustedCertificate') === 1, 5000, () => JSON.stringify(c.nodes[1]?.transport.status().refused));
    expect(c.loggers[1]?.lines.some((l) => l.level === 'warn' && /refused peer/.test(l.msg))).toBe(true);
    await stillReplicates();
  });

  it('refuses a valid certificate for a name that is not in the cluster', async () => {
    c = await plexusCluster(2);
    const mallory = await createNodeCertificate(c.certs.ca, { name: 'mallory' });
    const r = await rogue({ ...target(), ca: c.certs.ca.cert, ...mallory });
    expect(r.gotData).toBe(false);
    await eventually(() => rejected('unknownName') === 1, 5000, () => JSON.stringify(c.nodes[1]?.transport.status().refused));
    const line = c.loggers[1]?.lines.find((l) => /refused peer/.test(l.msg));
    expect(line?.obj).toMatchObject({ peer: 'mallory', reason: 'unknownName' });
    await stillReplicates();
  });

  it('refuses an expired certificate', async () => {
    c = await plexusCluster(2);
    const day = 86400_000;
    const expired = await createNodeCertificate(c.certs.ca, { name: 'n0', notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) });
    const r = await rogue({ ...target(), ca: c.certs.ca.cert, ...expired });
    expect(r.gotData).toBe(false);
    await eventually(() => rejected('expired') === 1, 5000, () => JSON.stringify(c.nodes[1]?.transport.status().refused));
    await stillReplicates();
  });

  it('refuses a client without a certificate', async () => {
    c = await plexusCluster(2);
    const r = await rogue({ ...target(), ca: c.certs.ca.cert });
    expect(r.gotData).toBe(false);
    await eventually(() => rejected('noCertificate') === 1, 5000, () => JSON.stringify(c.nodes[1]?.transport.status().refused));
    await stillReplicates();
  });

  it('refuses a plain TCP client', async () => {
    c = await plexusCluster(2);
    await new Promise<void>((resolve) => {
      const s = tcpConnect(target(), () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    await eventually(() => rejected('notTls') === 1, 5000, () => JSON.stringify(c.nodes[1]?.transport.status().refused));
    await stillReplicates();
  });

  it('refuses to start with a certificate that names another node', async () => {
    c = await plexusCluster(2);
    const { plexusTransport } = await import('../src/index.js');
    const { TransportStateError } = await import('@replica/transport-api');
    const t = plexusTransport({ listen: { host: '127.0.0.1', port: 0 }, peers: c.peers, tls: { ca: c.certs.ca.cert, ...(c.certs.nodes['n1'] as { cert: string; key: string }) } });
    await expect(t.start(c.nodes[0]!.store)).rejects.toBeInstanceOf(TransportStateError);
    await expect(t.start(c.nodes[0]!.store)).rejects.toThrow(/cannot start a transport that is|certificate names n1/);
  });

  it('a dialer refuses a server whose certificate names another node', async () => {
    // n0 dials n1's address, but n1's address is served by a node holding n2's certificate.
    c = await plexusCluster(3);
    await c.stopNode(1);
    const { plexusTransport } = await import('../src/index.js');
    const impostor = plexusTransport({
      listen: { host: '127.0.0.1', port: c.peers[1]?.port as number },
      peers: c.peers,
      tls: { ca: c.certs.ca.cert, ...(c.certs.nodes['n2'] as { cert: string; key: string }) },
    });
    const { Store } = await import('@replica/storage');
    const store = Store.open({ path: `${c.root}/impostor`, nodeName: 'n2', pruneIntervalMs: 0 });
    try {
      await impostor.start(store);
      await c.nodes[0]?.put('t', { id: 'secret' });
      await new Promise((r) => setTimeout(r, 500));
      expect(store.get('t', 'secret')).toBeUndefined();
      expect(c.nodes[0]?.transport.status().peers.find((p) => p.name === 'n1')?.connected).toBe(false);
      expect(c.nodes[0]?.transport.status().refused['wrongName']).toBeGreaterThan(0);
    } finally {
      await impostor.stop();
      await store.close();
    }
  });
});

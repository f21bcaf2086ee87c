import { connect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '@replica/transport-api';
import { converged, eventually } from '@replica/transport-api/testing';
import { createCertificateAuthority, createNodeCertificate, type Credentials } from '@replica/certs';
import { plexusCluster, type PlexusCluster } from './helpers.js';

type Tls = { ca: string; cert: string; key: string };

/** Whether node `to` admits a connection made with `tls` (it says hello), or refuses it. */
async function admitted(c: PlexusCluster, to: number, tls: Tls): Promise<boolean> {
  const s = connect({ host: '127.0.0.1', port: c.peers[to]?.port as number, ...tls, checkServerIdentity: () => undefined });
  s.on('error', () => {});
  try {
    // An admitted peer gets the node's HELLO frame; a refused one a closed connection.
    return await new Promise<boolean>((resolve) => {
      s.once('data', () => resolve(true));
      s.once('close', () => resolve(false));
      setTimeout(() => resolve(false), 3000);
    });
  } finally {
    s.destroy();
  }
}

const status = (c: PlexusCluster, i: number) => c.nodes[i]?.transport.status();

describe('plexus TLS material reloaded while running', () => {
  let c: PlexusCluster;
  afterEach(() => c?.teardown());

  it('rolls over to a new CA without a restart: live connections keep streaming, new ones use the new material', async () => {
    const tlsAtStart: (Tls | undefined)[] = [];
    c = await plexusCluster(2, (i) => (tlsAtStart[i] ? { tls: tlsAtStart[i] } : {}));
    const ca2 = await createCertificateAuthority('ca-2');
    const bundle = `${c.certs.ca.cert}\n${ca2.cert}`;
    const old = (i: number) => c.certs.nodes[`n${i}`] as Credentials;
    const next: Credentials[] = [await createNodeCertificate(ca2, { name: 'n0' }), await createNodeCertificate(ca2, { name: 'n1' })];
    const connects = () => status(c, 0)?.peers[0]?.counters['connects'];
    await eventually(() => connects() === 1, 5000, () => JSON.stringify(status(c, 0)?.peers));

    // n1 accepts n0's connections: a certificate from the new CA is refused before the rollover.
    expect(await admitted(c, 1, { ca: bundle, ...next[0] } as Tls)).toBe(false);
    await eventually(() => (status(c, 1)?.refused['untrustedCertificate'] ?? 0) === 1, 5000, () => JSON.stringify(status(c, 1)?.refused));

    // 1. Every node trusts both CAs, still with its old certificate; 2. n1 takes its new certificate.
    c.nodes[0]?.transport.reloadTls({ ca: bundle, ...old(0) });
    c.nodes[1]?.transport.reloadTls({ ca: bundle, ...old(1) });
    await c.nodes[0]?.put('t', { id: 'after-bundle' });
    c.nodes[1]?.transport.reloadTls({ ca: bundle, ...(next[1] as Credentials) });
    await c.nodes[1]?.put('t', { id: 'after-n1-rotated' });
    await converged(c.nodes, 10_000);
    // The connection that was live throughout kept streaming: no reconnect.
    expect(connects()).toBe(1);

    // New connections use the new material: n1 now admits a certificate of the new CA.
    expect(await admitted(c, 1, { ca: bundle, ...next[0] } as Tls)).toBe(true);
    expect(status(c, 1)?.refused['untrustedCertificate']).toBe(1);

    // 3. n0 takes its new certificate; n1 restarts trusting only the new CA: n0 dials it with the new one.
    c.nodes[0]?.transport.reloadTls({ ca: bundle, ...(next[0] as Credentials) });
    tlsAtStart[1] = { ca: ca2.cert, ...(next[1] as Credentials) };
    await c.stopNode(1);
    await c.nodes[0]?.put('t', { id: 'while-n1-restarts' });
    await c.startNode(1);
    await c.nodes[1]?.put('t', { id: 'after-both-rotated' });
    await converged(c.nodes, 10_000);
    expect(c.nodes[1]?.get('t', 'while-n1-restarts')).toEqual({ id: 'while-n1-restarts' });
    expect(status(c, 1)?.refused['untrustedCertificate'] ?? 0).toBe(0);
    // the reload is logged, and the expiry of the material in use is a gauge
    expect(c.loggers[0]?.lines.some((l) => l.msg.startsWith('plexus: TLS material reloaded'))).toBe(true);
    expect(status(c, 0)?.gauges['tlsCertificateExpirySeconds']).toBeGreaterThan(800 * 86_400);
  });

  it('refuses material it cannot use, says why, and keeps what it has', async () => {
    c = await plexusCluster(2);
    const n0 = c.nodes[0]?.transport;
    const own = c.certs.nodes['n0'] as Credentials;
    const other = c.certs.nodes['n1'] as Credentials;
    const foreign = await createNodeCertificate(await createCertificateAuthority('foreign'), { name: 'n0' });
    const ca = c.certs.ca.cert;
    const refused = (tls: Tls, why: RegExp) => {
      let err: unknown;
      try {
        n0?.reloadTls(tls);
      } catch (e) {
        err = e;
      }
      expect(err, `refused: ${why}`).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(why);
    };
    refused({ ca, cert: 'not a certificate', key: own.key }, /the certificate cannot be read/);
    refused({ ca, ...other }, /the certificate names n1, but this node is n0/);
    refused({ ca, cert: own.cert, key: other.key }, /the key does not belong to the certificate/);
    refused({ ca, ...foreign }, /no CA in the CA file signed the certificate/);
    refused({ ca: 'garbage', ...own }, /the CA file holds no certificate/);
    // Still the old material: a restarted peer with the old certificates connects, and writes flow.
    await c.stopNode(1);
    await c.startNode(1);
    await c.nodes[0]?.put('t', { id: 'still-served' });
    await converged(c.nodes, 10_000);
    expect(c.loggers[0]?.lines.some((l) => l.msg.startsWith('plexus: TLS material reloaded'))).toBe(false);
  });

  it('warns when its certificate expires within 14 days, and refuses to reload when not running', async () => {
    const ca = await createCertificateAuthority('short-lived');
    const soon = await createNodeCertificate(ca, { name: 'n0', notAfter: new Date(Date.now() + 4.5 * 86_400_000) });
    const n1 = await createNodeCertificate(ca, { name: 'n1' });
    c = await plexusCluster(2, (i) => ({ tls: { ca: ca.cert, ...(i === 0 ? soon : n1) } }));
    const warned = c.loggers[0]?.lines.find((l) => l.level === 'warn' && l.msg === "plexus: this node's certificate expires soon: rotate it");
    expect(warned?.obj).toMatchObject({ days: 4 });
    const t = c.nodes[0]?.transport;
    await c.teardown();
    expect(() => t?.reloadTls({ ca: ca.cert, ...soon })).toThrow(/only while the transport runs/);
  });
});

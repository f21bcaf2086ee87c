import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '@replica/storage';
import { eventually } from '@replica/transport-api/testing';
import { plexusTransport, type PlexusTransport } from '@replica/transport-plexus';
import { createCertificateAuthority, createNodeCertificate } from '@replica/certs';
import { reloadTlsOnChange, TLS_SETTLE_MS, TLS_WATCH_INTERVAL_MS } from '../src/tls-reload.js';
import { tempDir } from './helpers.js';

/** A logger that keeps what it was told. */
function recorder() {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj: obj as Record<string, unknown> });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Delivers SIGHUP to this process's handlers, then lets the reload (a promise chain, no I/O wait) finish: it is done after the microtasks, before setImmediate. */
async function hangup(): Promise<void> {
  process.emit('SIGHUP', 'SIGHUP');
  await new Promise((r) => setImmediate(r));
}

describe('TLS files re-read while a plexus node runs', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('on SIGHUP and on a file change, refusing unusable files and keeping the material in use', async () => {
    const dir = tempDir('replica-tls-reload-');
    cleanup.push(() => dir.remove());
    const ca = await createCertificateAuthority('reload-ca');
    const days = (n: number) => new Date(Date.now() + n * 86_400_000);
    const first = await createNodeCertificate(ca, { name: 'n0', notAfter: days(100) });
    const paths = { ca: join(dir.path, 'ca.crt'), cert: join(dir.path, 'n0.crt'), key: join(dir.path, 'n0.key') };
    writeFileSync(paths.ca, ca.cert);
    writeFileSync(paths.cert, first.cert);
    writeFileSync(paths.key, first.key);
    const store = Store.open({ path: join(dir.path, 'data'), nodeName: 'n0', pruneIntervalMs: 0 });
    const transport: PlexusTransport = plexusTransport({ listen: { host: '127.0.0.1', port: 0 }, peers: [], tls: { ca: ca.cert, ...first } });
    await transport.start(store);
    cleanup.push(async () => {
      await transport.stop();
      await store.close();
    });
    const log = recorder();
    const config = { kind: 'plexus', listen: { host: '127.0.0.1', port: 0 }, peers: [], advertise: '127.0.0.1:1', tls: paths, caKey: undefined } as const;
    const stop = reloadTlsOnChange(config, transport, log) as () => void;
    cleanup.push(stop);
    const expiryDays = () => Math.round((transport.status().gauges['tlsCertificateExpirySeconds'] ?? 0) / 86_400);
    expect(expiryDays()).toBe(100);

    // SIGHUP: the new certificate is in use at once.
    const second = await createNodeCertificate(ca, { name: 'n0', notAfter: days(200) });
    writeFileSync(paths.cert, second.cert);
    writeFileSync(paths.key, second.key);
    await hangup();
    expect(expiryDays()).toBe(200);
    expect(log.lines.at(-1)).toMatchObject({ level: 'info', msg: 'TLS files reloaded', obj: { why: 'SIGHUP' } });

    // A broken replacement: logged with the reason, the material in use stays.
    writeFileSync(paths.cert, 'not a certificate');
    await hangup();
    expect(log.lines.at(-1)).toMatchObject({ level: 'error', msg: 'TLS files not reloaded: the material in use stays' });
    expect(String(log.lines.at(-1)?.obj['err'])).toMatch(/the certificate cannot be read/);
    expect(expiryDays()).toBe(200);

    // A change to the files is noticed without a signal (polled, then left to settle).
    const third = await createNodeCertificate(ca, { name: 'n0', notAfter: days(300) });
    writeFileSync(paths.key, third.key);
    writeFileSync(paths.cert, third.cert);
    await eventually(() => expiryDays() === 300, 4 * (TLS_WATCH_INTERVAL_MS + TLS_SETTLE_MS), () => JSON.stringify(log.lines.at(-1)));
    expect(log.lines.at(-1)).toMatchObject({ level: 'info', obj: { why: 'a TLS file changed' } });

    // Once stopped, SIGHUP is no longer ours to handle.
    const listeners = process.listenerCount('SIGHUP');
    stop();
    expect(process.listenerCount('SIGHUP')).toBe(listeners - 1);
  });
});

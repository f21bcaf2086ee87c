// Two Replica nodes embedded in one service, without apps/node: each an LMDB store that
// replicates over plexus (mutually authenticated TLS 1.3). One write on `a` is read back
// on `b`. Run: npm install, npx tsc, node dist/service.js
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, createNodeCertificate } from '@replica/certs';
import { Store } from '@replica/storage';
import { ReplicaError } from '@replica/transport-api';
import { freePort } from '@replica/transport-api/ports';
import { plexusTransport, type PlexusTransport } from '@replica/transport-plexus';

const dir = mkdtempSync(join(tmpdir(), 'replica-embedded-'));
const ca = await createCertificateAuthority();
const names = ['a', 'b'] as const;
const peers = await Promise.all(names.map(async (name) => ({ name, host: '127.0.0.1', port: await freePort() })));

const nodes = await Promise.all(
  peers.map(async (self) => {
    const store = Store.open({ path: join(dir, self.name), nodeName: self.name });
    const { cert, key } = await createNodeCertificate(ca, { name: self.name });
    const transport: PlexusTransport = plexusTransport({ listen: { host: self.host, port: self.port }, peers, tls: { ca: ca.cert, cert, key } });
    await transport.start(store);
    return { store, transport };
  }),
);
const [a, b] = nodes as [(typeof nodes)[number], (typeof nodes)[number]];

try {
  const ready = await a.transport.whenReady(10_000);
  if (!ready.ready) throw new Error(`peers not connected: ${ready.waiting.join(', ')}`);
  const { seq } = await a.store.put('users', { id: 'u1', name: 'Ada' });
  // Wait until the one peer applied it, as `X-Replicate-Confirm: 1` does in apps/node.
  const confirmed = await a.transport.waitForReplicas(seq, 1, 10_000);
  console.log(JSON.stringify({ confirmed, onB: b.store.get('users', 'u1') }));
  try {
    await a.store.put('users', { id: 'u1', name: 'again' }, 'insert');
  } catch (err) {
    // every error Replica raises is a ReplicaError with a stable code
    if (!(err instanceof ReplicaError)) throw err;
    console.log(JSON.stringify({ refused: err.code }));
  }
} finally {
  for (const n of nodes) {
    await n.transport.stop();
    await n.store.close();
  }
  rmSync(dir, { recursive: true, force: true });
}

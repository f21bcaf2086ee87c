import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '@replica/storage';
import { freePort } from '@replica/transport-api/ports';
import type { Logger } from '@replica/transport-api';
import { startSuiteCluster, suiteNode, type SuiteCluster, type SuiteNode } from '@replica/transport-api/testing';
import { createCertificateAuthority, createNodeCertificate, type CertificateAuthority, type Credentials } from '@replica/certs';
import { plexusTransport, type PlexusInit, type PlexusPeer, type PlexusTransport } from '../src/index.js';

export { freePort };

export interface ClusterCerts {
  readonly ca: CertificateAuthority;
  readonly nodes: Record<string, Credentials>;
}

export async function clusterCerts(names: readonly string[]): Promise<ClusterCerts> {
  const ca = await createCertificateAuthority('test-ca');
  const nodes: Record<string, Credentials> = {};
  for (const n of names) nodes[n] = await createNodeCertificate(ca, { name: n });
  return { ca, nodes };
}

/** Collects log lines so tests can assert that something was logged, and why. */
export function memoryLogger(): Logger & { lines: { level: string; msg: string; obj: object }[] } {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export type PlexusNode = SuiteNode & { store: Store; transport: PlexusTransport };

export interface PlexusCluster extends SuiteCluster {
  readonly nodes: PlexusNode[];
  readonly peers: PlexusPeer[];
  readonly certs: ClusterCerts;
  readonly root: string;
  readonly loggers: ReturnType<typeof memoryLogger>[];
}

/**
 * Starts `size` nodes n0…n(size-1), each a real LMDB store and a plexus transport on
 * its own loopback port with its own certificate. `tweak` adjusts a node's settings.
 */
export async function plexusCluster(
  size: number,
  tweak: (i: number) => Partial<PlexusInit> & { retention?: { maxEntries?: number } } = () => ({}),
): Promise<PlexusCluster> {
  const names = Array.from({ length: size }, (_, i) => `n${i}`);
  const certs = await clusterCerts(names);
  const root = mkdtempSync(join(tmpdir(), 'replica-plexus-'));
  const peers: PlexusPeer[] = [];
  for (const name of names) peers.push({ name, host: '127.0.0.1', port: await freePort() });
  const loggers = names.map(() => memoryLogger());
  const make = (i: number): PlexusNode => {
    const name = names[i] as string;
    const { retention, ...settings } = tweak(i);
    const store = Store.open({ path: join(root, name), nodeName: name, pruneIntervalMs: 0, ...(retention ? { retention } : {}) });
    const transport = plexusTransport(
      {
        listen: { host: '127.0.0.1', port: (peers[i] as PlexusPeer).port },
        peers,
        tls: { ca: certs.ca.cert, ...(certs.nodes[name] as Credentials) },
        heartbeatMs: 200,
        deadAfterMs: 1500,
        reconnectMinMs: 20,
        reconnectMaxMs: 300,
        ...settings,
      },
      { logger: loggers[i] as Logger },
    );
    return suiteNode(store, transport);
  };
  const cluster = await startSuiteCluster({
    size,
    make,
    dataDir: (i) => join(root, names[i] as string),
    cleanup: async () => rmSync(root, { recursive: true, force: true }),
  });
  return { ...cluster, peers, certs, root, loggers };
}

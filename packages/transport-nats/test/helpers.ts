import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store, type StoreOptions } from '@replica/storage';
import { startSuiteCluster, suiteNode, type SuiteCluster, type SuiteNode } from '@replica/transport-api/testing';
import { natsTransport, startNatsCluster, type NatsInit, type NatsServer, type NatsTransport, type PublishMode } from '../src/index.js';

export type NatsNode = SuiteNode & { store: Store; transport: NatsTransport };

export interface NatsTestCluster extends SuiteCluster {
  readonly nodes: NatsNode[];
  readonly servers: NatsServer[];
  readonly root: string;
}

/**
 * `size` Replica nodes n0…, each with its own nats-server (clustered, JetStream on
 * file storage) and its stream placed on that server, all on loopback.
 */
export async function natsCluster(
  size: number,
  mode: PublishMode,
  /** Transport options for node i; `placement: null` leaves its stream unplaced. */
  tweak: (i: number, servers: readonly NatsServer[]) => Omit<Partial<NatsInit>, 'placement'> & { placement?: NatsInit['placement'] | null } = () => ({}),
  tweakStore: (i: number) => Partial<StoreOptions> = () => ({}),
): Promise<NatsTestCluster> {
  const names = Array.from({ length: size }, (_, i) => `n${i}`);
  const root = mkdtempSync(join(tmpdir(), 'replica-nats-'));
  let servers: NatsServer[] = [];
  try {
    ({ servers } = await startNatsCluster({ names, dir: join(root, 'nats') }));
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const make = (i: number): NatsNode => {
    const name = names[i] as string;
    const store = Store.open({ path: join(root, name), nodeName: name, pruneIntervalMs: 0, ...tweakStore(i) });
    const { placement = { cluster: 'replica', tag: name }, ...init } = tweak(i, servers);
    const transport = natsTransport({
      servers: (servers[i] as NatsServer).url,
      mode,
      ...(placement === null ? {} : { placement }),
      discoverIntervalMs: 200,
      fetchExpiresMs: 1000,
      ...init,
    });
    return suiteNode(store, transport);
  };
  const cluster = await startSuiteCluster({
    size,
    make,
    dataDir: (i) => join(root, names[i] as string),
    cleanup: async () => {
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(root, { recursive: true, force: true });
    },
  });
  return { ...cluster, servers, root };
}

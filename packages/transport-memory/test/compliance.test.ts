import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '@replica/storage';
import { runTransportSuite, startSuiteCluster, suiteNode, type SuiteCluster, type SuiteNode } from '@replica/transport-api/testing';
import { MemoryNetwork, memoryTransport } from '../src/index.js';

function node(store: Store, network: MemoryNetwork): SuiteNode & { store: Store } {
  return suiteNode(store, memoryTransport({ network, batchSize: 16 }));
}

runTransportSuite({
  name: 'memory',
  capabilities: { confirm: true, wipe: true, refuse: true },
  async setup(size): Promise<SuiteCluster> {
    const network = new MemoryNetwork();
    const root = mkdtempSync(join(tmpdir(), 'replica-memory-'));
    return startSuiteCluster({
      size,
      make: (i) => node(Store.open({ path: join(root, `n${i}`), nodeName: `n${i}`, pruneIntervalMs: 0 }), network),
      dataDir: (i) => join(root, `n${i}`),
      cleanup: async () => rmSync(root, { recursive: true, force: true }),
    });
  },
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '@replica/storage';
import { refusingNode, runTransportSuite, suiteNode, type RefusingNode, type SuiteCluster, type SuiteNode } from '@replica/transport-api/testing';
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
    const open = (i: number) => Store.open({ path: join(root, `n${i}`), nodeName: `n${i}`, pruneIntervalMs: 0 });
    const nodes = Array.from({ length: size }, (_, i) => node(open(i), network));
    const gates: RefusingNode[] = nodes.map((n) => refusingNode(n.store));
    for (const [i, n] of nodes.entries()) await n.transport.start((gates[i] as RefusingNode).node);
    let down = false;
    return {
      nodes,
      refuseWrites(i) {
        const gate = gates[i] as RefusingNode;
        const release = gate.refuse();
        return {
          get refused() {
            return gate.refused;
          },
          release,
        };
      },
      async stopNode(i) {
        const n = nodes[i] as SuiteNode & { store: Store };
        await n.transport.stop();
        await n.store.close();
      },
      async startNode(i) {
        const n = node(open(i), network);
        nodes[i] = n;
        gates[i] = refusingNode(n.store);
        await n.transport.start((gates[i] as RefusingNode).node);
      },
      async wipeNode(i) {
        rmSync(join(root, `n${i}`), { recursive: true, force: true });
      },
      async teardown() {
        if (down) return;
        down = true;
        for (const n of nodes) await n.transport.stop();
        for (const n of nodes) await n.store.close();
        rmSync(root, { recursive: true, force: true });
      },
    };
  },
});

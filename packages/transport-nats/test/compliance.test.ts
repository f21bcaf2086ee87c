import { runTransportSuite } from '@replica/transport-api/testing';
import { natsCluster } from './helpers.js';

// Real nats-server processes (one per node, clustered, JetStream on files), real LMDB stores.
for (const mode of ['per-write', 'batched'] as const) {
  runTransportSuite({
    name: `nats ${mode}`,
    capabilities: { confirm: true, wipe: true, refuse: true },
    setup: (size) => natsCluster(size, mode),
  });
}

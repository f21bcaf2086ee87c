import { runTransportSuite } from '@replica/transport-api/testing';
import { plexusCluster } from './helpers.js';

// Real TLS 1.3 sockets on loopback, real LMDB stores, one transport per node.
runTransportSuite({
  name: 'plexus',
  capabilities: { confirm: true, wipe: true, refuse: true },
  setup: (size) => plexusCluster(size),
});

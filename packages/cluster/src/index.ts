export { freePort } from '@replica/transport-nats';
export { NODE_MAIN, startCluster, stopAllClusters, type Cluster, type ClusterNode, type ClusterOptions, type ClusterTransport } from './cluster.js';
export { createHostNetwork, hostNetworkUnavailable, removeStaleHostNetworks, uniquePrefix, type HostNetwork, type NamespaceHost } from './netns.js';
export {
  REHEARSAL_PORTS,
  rehearsalUnavailable,
  startRehearsal,
  type ExecResult,
  type Rehearsal,
  type RehearsalNatsServer,
  type RehearsalNode,
  type RehearsalOptions,
} from './rehearsal.js';

export { freePort } from '@replica/transport-nats';
export { NODE_MAIN, startCluster, stopAllClusters, type Cluster, type ClusterNode, type ClusterOptions, type ClusterTransport } from './cluster.js';

export { NODE_MAIN, freePort, startCluster, type Cluster, type ClusterNode, type ClusterOptions, type ClusterTransport } from './cluster.js';

export { natsTransport, type NatsComponents, type NatsTransport } from './transport.js';
export { PublishMode, type NatsInit } from './options.js';
export { splitCredentials } from './connection.js';
export type { NatsTlsFiles } from './tls.js';
export {
  natsServerBinary,
  natsServerConfig,
  joinNatsCluster,
  routesOf,
  startNatsCluster,
  startNatsServer,
  type NatsJoinOptions,
  type NatsClusterOptions,
  type NatsServer,
  type NatsServerOptions,
} from './server.js';
export { freePort } from '@replica/transport-api/ports';

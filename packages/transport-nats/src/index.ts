export { natsTransport, splitCredentials, type NatsComponents, type NatsInit, type NatsTransport, type PublishMode } from './transport.js';
export type { NatsTlsFiles } from './tls.js';
export {
  freePort,
  natsServerBinary,
  natsServerConfig,
  startNatsCluster,
  startNatsServer,
  type NatsClusterOptions,
  type NatsServer,
  type NatsServerOptions,
} from './server.js';

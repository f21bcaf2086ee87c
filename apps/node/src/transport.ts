import { readFileSync } from 'node:fs';
import type { Logger, ReplicationTransport } from '@replica/transport-api';
import { natsTransport } from '@replica/transport-nats';
import { plexusTransport } from '@replica/transport-plexus';
import type { TransportConfig } from './config.js';

export interface TransportDeps {
  readonly logger: Logger;
}

/** The transport a config asks for, or undefined for `none`. One exhaustive switch. */
export function transportFromConfig(config: TransportConfig, deps: TransportDeps): ReplicationTransport | undefined {
  switch (config.kind) {
    case 'none':
      return undefined;
    case 'plexus':
      return plexusTransport(
        {
          listen: config.listen,
          peers: config.peers,
          tls: { ca: readFileSync(config.tls.ca), cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) },
        },
        { logger: deps.logger },
      );
    case 'nats':
      return natsTransport(
        {
          servers: config.servers,
          mode: config.mode,
          streamMaxAgeMs: config.streamMaxAgeMs,
          streamMaxBytes: config.streamMaxBytes,
          streamReplicas: config.streamReplicas,
          ...(config.placement ? { placement: config.placement } : {}),
          ...(config.tls ? { tls: config.tls } : {}),
        },
        { logger: deps.logger },
      );
    default:
      return assertNever(config);
  }
}

export function assertNever(x: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(x)}`);
}

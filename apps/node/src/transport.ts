import type { ReplicationTransport } from '@replica/transport-api';
import type { TransportConfig } from './config.js';

/** The transport a config asks for, or undefined for `none`. One exhaustive switch. */
export function transportFromConfig(config: TransportConfig): ReplicationTransport | undefined {
  switch (config.kind) {
    case 'none':
      return undefined;
    default:
      return assertNever(config.kind);
  }
}

export function assertNever(x: never): never {
  throw new Error(`unhandled case: ${String(x)}`);
}

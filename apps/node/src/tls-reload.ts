import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger, ReplicationTransport } from '@replica/transport-api';
import type { NatsTransport } from '@replica/transport-nats';
import type { PlexusTransport } from '@replica/transport-plexus';
import type { TransportConfig } from './config.js';

/** How often the TLS files are looked at for a change. */
export const TLS_WATCH_INTERVAL_MS = 2000;
/** A change is acted on once the files were quiet this long (a certificate and its key are written one after the other). */
export const TLS_SETTLE_MS = 500;

/**
 * Calls `reload` on SIGHUP and when one of `paths` changes (polled, then left to settle).
 * A reload that fails is logged at error level: the transport keeps the material it
 * uses. Returns a function that stops watching.
 */
export function reloadOnChange(paths: readonly string[], reload: () => void | Promise<void>, log: Logger): () => void {
  let settle: NodeJS.Timeout | undefined;
  const run = async (why: string) => {
    try {
      await reload();
      log.info({ why, files: paths }, 'TLS files reloaded');
    } catch (err) {
      log.error({ why, files: paths, err: (err as Error).message }, 'TLS files not reloaded: the material in use stays');
    }
  };
  const changed = () => {
    clearTimeout(settle);
    settle = setTimeout(() => void run('a TLS file changed'), TLS_SETTLE_MS);
    settle.unref();
  };
  const hangup = () => void run('SIGHUP');
  for (const p of paths) watchFile(p, { interval: TLS_WATCH_INTERVAL_MS, persistent: false }, changed);
  process.on('SIGHUP', hangup);
  return () => {
    clearTimeout(settle);
    for (const p of paths) unwatchFile(p, changed);
    process.off('SIGHUP', hangup);
  };
}

/**
 * Re-reads a node's TLS files on SIGHUP and when they change: plexus's `TLS_*` (new
 * connections use them, live ones keep streaming) or nats's `NATS_TLS_*` (the client
 * reconnects with them). Undefined when the node uses no TLS files.
 */
export function reloadTlsOnChange(config: TransportConfig, transport: ReplicationTransport, log: Logger): (() => void) | undefined {
  switch (config.kind) {
    case 'plexus': {
      const { ca, cert, key } = config.tls;
      const plexus = transport as PlexusTransport;
      return reloadOnChange([ca, cert, key], () => plexus.reloadTls({ ca: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key) }), log);
    }
    case 'nats': {
      const files = [config.tls?.ca, config.tls?.cert, config.tls?.key].filter((f): f is string => f !== undefined);
      if (files.length === 0) return undefined;
      const nats = transport as NatsTransport;
      return reloadOnChange(files, () => nats.reloadTls(), log);
    }
    case 'none':
      return undefined;
  }
}

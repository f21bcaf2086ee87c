import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '@replica/transport-api';
import type { PlexusTransport } from '@replica/transport-plexus';

/** How often the TLS files are looked at for a change. */
export const TLS_WATCH_INTERVAL_MS = 2000;
/** A change is acted on once the files were quiet this long (a certificate and its key are written one after the other). */
export const TLS_SETTLE_MS = 500;

/**
 * Re-reads a plexus node's TLS files (`TLS_CA`, `TLS_CERT`, `TLS_KEY`) on SIGHUP and
 * when one of them changes, and hands them to the running transport: new connections
 * use them, live ones keep streaming. Files that cannot be read or used are logged at
 * error level and the material in use stays. Returns a function that stops watching.
 */
export function reloadTlsOnChange(paths: { readonly ca: string; readonly cert: string; readonly key: string }, transport: PlexusTransport, log: Logger): () => void {
  let settle: NodeJS.Timeout | undefined;
  const reload = (why: string) => {
    try {
      transport.reloadTls({ ca: readFileSync(paths.ca), cert: readFileSync(paths.cert), key: readFileSync(paths.key) });
      log.info({ why, ...paths }, 'TLS files reloaded');
    } catch (err) {
      log.error({ why, ...paths, err: (err as Error).message }, 'TLS files not reloaded: the material in use stays');
    }
  };
  const changed = () => {
    clearTimeout(settle);
    settle = setTimeout(() => reload('a TLS file changed'), TLS_SETTLE_MS);
    settle.unref();
  };
  const hangup = () => reload('SIGHUP');
  for (const p of [paths.ca, paths.cert, paths.key]) watchFile(p, { interval: TLS_WATCH_INTERVAL_MS, persistent: false }, changed);
  process.on('SIGHUP', hangup);
  return () => {
    clearTimeout(settle);
    for (const p of [paths.ca, paths.cert, paths.key]) unwatchFile(p, changed);
    process.off('SIGHUP', hangup);
  };
}

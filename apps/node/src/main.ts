#!/usr/bin/env node
import { mkdirSync } from 'node:fs';
import { pino } from 'pino';
import { Store, backupStore, isLmdbCommitFailure } from '@replica/storage';
import { ConfigError, type ReplicationTransport } from '@replica/transport-api';
import { parseCli, usageError } from '@replica/transport-api/cli';
import { buildApp } from './app.js';
import { loadConfig, type Config } from './config.js';
import { JoinSigner } from './join.js';
import { Membership, selfAddress } from './membership.js';
import { reloadTlsOnChange } from './tls-reload.js';
import { transportFromConfig } from './transport.js';

const USAGE = `usage: replica-node [--help] [--version]
       replica-node backup --out <dir> [--data-dir <dir>] [--no-compact]

Starts one Replica node. It takes no arguments: every setting comes from the environment
(NODE_NAME, HOST, PORT, DATA_DIR, REPLICATION_TRANSPORT=none|plexus|nats, PEERS,
TLS_CA/TLS_CERT/TLS_KEY, NATS_URL, API_TOKEN, ADMIN_TOKEN, …; the full list is in
docs/configuration.md).

SIGTERM or SIGINT stops it cleanly; SIGHUP re-reads its TLS files.
Exit status: 2 for a bad configuration or usage, 1 when start-up fails.

backup copies the store in <data-dir> (default: $DATA_DIR) into <out> (new or empty) as
one consistent snapshot, also while the node runs and writes; prints one JSON line.
Restore: docs/operations.md.`;

const BACKUP_USAGE = `usage: replica-node backup --out <dir> [--data-dir <dir>] [--no-compact]

Copies the store in <data-dir> (default: $DATA_DIR) into <out>, which must be new or
empty, as one consistent snapshot (LMDB copies it inside one read transaction, so a node
may keep running and writing). Free pages are left out unless --no-compact. Prints one
JSON line {"out", "bytes", "ms"}. Exit status: 2 on a usage error, 1 when the copy fails.
Restore: stop the node, put <out>/data.mdb into an empty DATA_DIR, start it; it catches up
from its peers (docs/operations.md).`;

/** `replica-node backup`: a consistent copy of a node's store. */
async function backup(argv: readonly string[]): Promise<void> {
  const spec = {
    name: 'replica-node',
    usage: BACKUP_USAGE,
    packageJson: new URL('../package.json', import.meta.url),
    options: { out: { type: 'string' }, 'data-dir': { type: 'string' }, 'no-compact': { type: 'boolean', default: false } },
  } as const;
  const { values } = parseCli<{ out?: string; 'data-dir'?: string; 'no-compact': boolean }>(spec, argv);
  const dataDir = values['data-dir'] ?? process.env['DATA_DIR'];
  if (values.out === undefined) usageError(spec, '--out <dir> is required');
  if (dataDir === undefined) usageError(spec, '--data-dir <dir> is required when DATA_DIR is not set');
  try {
    const r = await backupStore(dataDir, values.out, { compact: !values['no-compact'] });
    process.stdout.write(`${JSON.stringify({ out: values.out, bytes: r.bytes, ms: r.ms })}\n`);
  } catch (err) {
    process.stderr.write(`replica-node backup: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

/** Starts one node from the environment; stops cleanly on SIGTERM/SIGINT; a node re-reads its TLS files on SIGHUP and when they change. */
async function main(): Promise<void> {
  if (process.argv[2] === 'backup') return backup(process.argv.slice(3));
  const { positionals } = parseCli({ name: 'replica-node', usage: USAGE, packageJson: new URL('../package.json', import.meta.url), allowPositionals: true });
  if (positionals.length > 0) {
    process.stderr.write(`replica-node: takes no arguments (got ${JSON.stringify(positionals[0])}); configure it with environment variables\n${USAGE}\n`);
    process.exit(2);
  }
  let config: Config;
  let signer: JoinSigner | undefined;
  try {
    config = loadConfig(process.env);
    if (config.transport.kind === 'plexus' && config.transport.caKey !== undefined) signer = JoinSigner.fromFiles(config.transport.tls.ca, config.transport.caKey);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`replica: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  mkdirSync(config.dataDir, { recursive: true });
  const logger = pino({ level: config.logLevel });
  // lmdb-js rejects a promise of its own for every failed commit that no caller holds;
  // the store holds it and reports the failure through the writes' own promises (a full
  // disk refuses writes and recovers by itself). This is the net behind that: such a
  // rejection is logged, never fatal. Any other unhandled rejection is a bug: logged
  // with its cause, and the process exits as Node.js would, so that it is restarted.
  process.on('unhandledRejection', (reason) => {
    if (isLmdbCommitFailure(reason)) {
      logger.debug({ err: reason }, 'a failed LMDB commit, reported by the store');
      return;
    }
    logger.fatal({ err: reason }, 'unhandled rejection; exiting');
    process.exit(1);
  });
  let store: Store;
  try {
    store = Store.open({
      logger: logger.child({ component: 'store' }),
      path: config.dataDir,
      nodeName: config.nodeName,
      durability: config.durability,
      minFree: config.minFree,
      retention: config.retention,
      pruneIntervalMs: config.pruneIntervalMs,
      ...(config.clockOffsetMs !== 0 ? { wallClock: () => Date.now() + config.clockOffsetMs } : {}),
    });
  } catch (err) {
    logger.fatal({ err, dataDir: config.dataDir }, 'cannot open the store');
    process.exit(1);
  }
  let transport: ReplicationTransport | undefined;
  try {
    transport = transportFromConfig(config.transport, { logger: logger.child({ component: 'replication' }) });
  } catch (err) {
    logger.fatal({ err }, 'cannot set up the replication transport');
    await store.close();
    process.exit(1);
  }
  const membership = new Membership(store, transport, { name: config.nodeName, address: selfAddress(config.transport) }, logger.child({ component: 'membership' }));
  const app = buildApp(config, { store, transport, logger, membership, signer });

  let stopTlsWatch: (() => void) | undefined;
  let stopping: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    stopping ??= (async () => {
      app.log.info({ signal }, 'shutting down: finishing in-flight requests');
      const force = setTimeout(() => {
        app.log.error('shutdown took longer than 10 s; exiting');
        process.exit(1);
      }, 10_000);
      force.unref();
      // Keep-alive connections go idle as their last request finishes; close them then,
      // or server.close() would wait for clients to hang up.
      const idle = setInterval(() => app.server.closeIdleConnections(), 50);
      stopTlsWatch?.();
      try {
        await app.close();
        clearInterval(idle);
        membership.stop();
        await transport?.stop();
        await store.close();
        app.log.info('stopped');
      } catch (err) {
        app.log.error({ err }, 'error during shutdown');
        process.exitCode = 1;
      } finally {
        clearInterval(idle);
      }
    })();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  try {
    await membership.start();
    await transport?.start(store);
    if (transport) stopTlsWatch = reloadTlsOnChange(config.transport, transport, logger.child({ component: 'replication' }));
    const address = await app.listen({ host: config.host, port: config.port });
    app.log.info({ node: config.nodeName, transport: config.transport.kind, address, dataDir: config.dataDir }, 'replica node listening');
  } catch (err) {
    app.log.fatal({ err }, 'startup failed');
    membership.stop();
    await transport?.stop().catch((e: unknown) => app.log.error({ err: e }, 'stopping the transport after the failed start failed too'));
    await store.close().catch((e: unknown) => app.log.error({ err: e }, 'closing the store after the failed start failed too'));
    process.exit(1);
  }
}

await main();

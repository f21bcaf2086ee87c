#!/usr/bin/env node
import { mkdirSync } from 'node:fs';
import { pino } from 'pino';
import { Store } from '@replica/storage';
import { ConfigError, type ReplicationTransport } from '@replica/transport-api';
import { parseCli } from '@replica/transport-api/cli';
import { buildApp } from './app.js';
import { loadConfig, type Config } from './config.js';
import { JoinSigner } from './join.js';
import { Membership, selfAddress } from './membership.js';
import { reloadTlsOnChange } from './tls-reload.js';
import { transportFromConfig } from './transport.js';

const USAGE = `usage: replica-node [--help] [--version]

Starts one Replica node. It takes no arguments: every setting comes from the environment
(NODE_NAME, HOST, PORT, DATA_DIR, REPLICATION_TRANSPORT=none|plexus|nats, PEERS,
TLS_CA/TLS_CERT/TLS_KEY, NATS_URL, API_TOKEN, ADMIN_TOKEN, …; the full list is in
docs/configuration.md).

SIGTERM or SIGINT stops it cleanly; SIGHUP re-reads its TLS files.
Exit status: 2 for a bad configuration or usage, 1 when start-up fails.`;

/** Starts one node from the environment; stops cleanly on SIGTERM/SIGINT; a node re-reads its TLS files on SIGHUP and when they change. */
async function main(): Promise<void> {
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
  const store = Store.open({
    logger: logger.child({ component: 'store' }),
    path: config.dataDir,
    nodeName: config.nodeName,
    durability: config.durability,
    retention: config.retention,
    pruneIntervalMs: config.pruneIntervalMs,
    ...(config.clockOffsetMs !== 0 ? { wallClock: () => Date.now() + config.clockOffsetMs } : {}),
  });
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

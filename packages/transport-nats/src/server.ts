import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@replica/transport-api/ports';

/** One nats-server of a cluster. Paths are absolute or relative to the process's cwd. */
export interface NatsServerOptions {
  /** Server name; also a server tag, so a stream can be placed on "its" server. */
  readonly name: string;
  readonly host?: string;
  readonly clientPort: number;
  /** Monitoring port (/healthz, /varz); readiness is checked through it. */
  readonly httpPort: number;
  /** Cluster (route) port; omit for a single server. */
  readonly clusterPort?: number;
  /** Route URLs of every server of the cluster, e.g. nats-route://127.0.0.1:6222. */
  readonly routes?: readonly string[];
  readonly clusterName?: string;
  /** JetStream storage directory (the server appends /jetstream). */
  readonly storeDir: string;
  readonly maxMemoryStore?: string;
  readonly maxFileStore?: string;
  /** Client authentication. */
  readonly auth?: { readonly user: string; readonly password: string };
  /** Route authentication between the servers of the cluster. */
  readonly clusterAuth?: { readonly user: string; readonly password: string };
  /**
   * TLS for client connections (PEM file paths); clients must then use TLS. With
   * `verify`, a client must also present a certificate signed by `ca`.
   */
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string; readonly verify?: boolean };
  /**
   * TLS for the routes between the servers of the cluster (PEM file paths). Both ends of
   * a route present `cert` and check the other's against `ca`, so every server needs a
   * certificate signed by `ca`, usable for server and client auth, that names the host
   * of its route URL.
   */
  readonly clusterTls?: { readonly ca: string; readonly cert: string; readonly key: string };
}

const q = (s: string) => JSON.stringify(s);

/** The configuration file text for one server. */
export function natsServerConfig(o: NatsServerOptions): string {
  const host = o.host ?? '127.0.0.1';
  const lines = [
    `server_name: ${q(o.name)}`,
    `listen: ${q(`${host}:${o.clientPort}`)}`,
    `http: ${q(`${host}:${o.httpPort}`)}`,
    `server_tags: [${q(o.name)}]`,
    'max_payload: 8MB',
    `jetstream {`,
    `  store_dir: ${q(o.storeDir)}`,
    `  max_memory_store: ${o.maxMemoryStore ?? '256MB'}`,
    `  max_file_store: ${o.maxFileStore ?? '8GB'}`,
    `}`,
  ];
  if (o.auth) lines.push(`authorization { user: ${q(o.auth.user)}, password: ${q(o.auth.password)} }`);
  const tls = (t: { ca: string; cert: string; key: string }) => `tls { ca_file: ${q(t.ca)}, cert_file: ${q(t.cert)}, key_file: ${q(t.key)}`;
  if (o.tls) lines.push(`${tls(o.tls)}${o.tls.verify ? ', verify: true' : ''} }`);
  if (o.clusterPort !== undefined) {
    lines.push('cluster {');
    lines.push(`  name: ${q(o.clusterName ?? 'replica')}`);
    lines.push(`  listen: ${q(`${host}:${o.clusterPort}`)}`);
    if (o.clusterAuth) lines.push(`  authorization { user: ${q(o.clusterAuth.user)}, password: ${q(o.clusterAuth.password)} }`);
    if (o.clusterTls) lines.push(`  ${tls(o.clusterTls)} }`);
    const auth = o.clusterAuth ? `${encodeURIComponent(o.clusterAuth.user)}:${encodeURIComponent(o.clusterAuth.password)}@` : '';
    const routes = (o.routes ?? []).map((r) => r.replace('://', `://${auth}`));
    lines.push(`  routes: [${routes.map(q).join(', ')}]`);
    lines.push('}');
  }
  return `${lines.join('\n')}\n`;
}

/** nats-server from `bin`, else /usr/sbin/nats-server (Debian), else `nats-server` on PATH. */
export function natsServerBinary(bin?: string): string {
  if (bin) return bin;
  return existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
}

/** A running nats-server started by this process. */
export interface NatsServer {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly configFile: string;
  readonly logFile: string;
  /** The URL other servers route to it by (nats-route://host:port); undefined for a server without a cluster port. */
  readonly routeUrl: string | undefined;
  /** Its monitoring endpoint (http://host:port): /routez, /jsz, /healthz. */
  readonly monitorUrl: string;
  /** The process runs (started and not exited). */
  readonly running: boolean;
  /** Sends `signal` (default SIGTERM) and waits for the exit. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the same server (same config and store) again, stopping it first if it runs. */
  restart(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** How long a standalone server may take to report healthy (`readyTimeoutMs`' default). */
export const READY_TIMEOUT_MS = 20_000;
/**
 * How long a clustered server may take (the default when it has routes, and the least a
 * restart waits): it cannot report healthy while the cluster has no JetStream meta
 * leader, and electing one after the leader's server died took 4-23 s in 20 tries here
 * (nats-server 2.9.10).
 */
export const CLUSTERED_READY_TIMEOUT_MS = 60_000;

/**
 * Writes the server's config into `dir`, starts it and resolves once its monitoring
 * endpoint reports healthy. The process is killed if that takes longer than `readyTimeoutMs`
 * ({@link READY_TIMEOUT_MS}, or {@link CLUSTERED_READY_TIMEOUT_MS} for a server with routes).
 */
export async function startNatsServer(
  opts: NatsServerOptions & {
    readonly dir: string;
    readonly bin?: string;
    readonly readyTimeoutMs?: number;
    /**
     * The Go runtime's GOMAXPROCS for this server (default: the Go default, every core).
     * Servers that share a host with other servers and nodes do better with their share
     * of its cores: Go's idle threads spin looking for work, taking CPU from the others.
     */
    readonly gomaxprocs?: number;
  },
): Promise<NatsServer> {
  mkdirSync(opts.dir, { recursive: true });
  const configFile = join(opts.dir, `${opts.name}.conf`);
  const logFile = join(opts.dir, `${opts.name}.log`);
  writeFileSync(configFile, natsServerConfig(opts));
  const host = opts.host ?? '127.0.0.1';
  let child: ChildProcess;
  let exited: Promise<void>;
  const clustered = (opts.routes?.length ?? 0) > 0;
  const readyTimeoutMs = opts.readyTimeoutMs ?? (clustered ? CLUSTERED_READY_TIMEOUT_MS : READY_TIMEOUT_MS);

  const launch = async (timeoutMs: number) => {
    const fd = openSync(logFile, 'a');
    const env = opts.gomaxprocs === undefined ? process.env : { ...process.env, GOMAXPROCS: String(opts.gomaxprocs) };
    child = spawn(natsServerBinary(opts.bin), ['-c', configFile], { stdio: ['ignore', fd, fd], env });
    closeSync(fd);
    live.add(child);
    exited = new Promise((resolve) => child.once('exit', () => (live.delete(child), resolve())));
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err; // a missing binary, say: no 'exit' follows
      live.delete(child);
    });
    const deadline = Date.now() + timeoutMs;
    // the last lines of its log, less the warnings our own health polls cause
    const tail = (lines: number) =>
      readFileSync(logFile, 'utf8')
        .trimEnd()
        .split('\n')
        .filter((l) => !l.includes('Healthcheck failed'))
        .slice(-lines)
        .join('\n');
    let answer = 'no answer from its monitoring port';
    for (;;) {
      if (spawnError) throw new Error(`nats-server ${opts.name} could not be started: ${spawnError.message} (is nats-server installed? bin: ${natsServerBinary(opts.bin)})`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`nats-server ${opts.name} exited during start-up (${logFile}):\n${tail(5)}`);
      }
      try {
        const r = await fetch(`http://${host}:${opts.httpPort}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) return;
        answer = `/healthz answered ${r.status} ${(await r.text()).trim()}`;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await exited; // gone before the caller hears of it
        // the log is in a directory the caller may remove: its last lines go with the error
        throw new Error(
          `nats-server ${opts.name} not healthy in time (is nats-server installed? bin: ${natsServerBinary(opts.bin)}); ${answer}; see ${logFile}, which ended:\n${tail(12)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch(readyTimeoutMs);
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.kill(signal);
    await exited;
    clearTimeout(force);
  };
  const auth = opts.auth ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.password)}@` : '';
  return {
    name: opts.name,
    url: `${opts.tls ? 'tls' : 'nats'}://${auth}${host}:${opts.clientPort}`,
    get pid() {
      return child.pid ?? 0;
    },
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    configFile,
    logFile,
    routeUrl: opts.clusterPort === undefined ? undefined : `nats-route://${host}:${opts.clusterPort}`,
    monitorUrl: `http://${host}:${opts.httpPort}`,
    stop,
    // A running server is stopped first: a second process on the same ports would exit,
    // while the first one kept answering the health check, and then outlive stop().
    // …and a clustered one waits out a meta-leader election, whatever its first start allowed
    restart: async () => {
      await stop();
      await launch(clustered ? Math.max(readyTimeoutMs, CLUSTERED_READY_TIMEOUT_MS) : readyTimeoutMs);
    },
  };
}

export interface NatsClusterOptions {
  readonly names: readonly string[];
  readonly dir: string;
  readonly host?: string;
  readonly bin?: string;
  readonly auth?: { readonly user: string; readonly password: string };
  readonly clusterAuth?: { readonly user: string; readonly password: string };
  /** Client TLS of the server named `name` (see {@link NatsServerOptions.tls}). */
  readonly tls?: (name: string) => NatsServerOptions['tls'];
  /** Route TLS of the server named `name` (see {@link NatsServerOptions.clusterTls}). */
  readonly clusterTls?: (name: string) => NatsServerOptions['clusterTls'];
  /** GOMAXPROCS of every server (see {@link startNatsServer}). */
  readonly gomaxprocs?: number;
  /** `max_file_store` of the server named `name` (default 8GB), e.g. a small one to fill up. */
  readonly maxFileStore?: (name: string) => string | undefined;
}

/**
 * n clustered nats-servers with JetStream, one per name, on free ports. A port can be
 * taken between the check and the server's bind; such a start is retried with new ports.
 */
export async function startNatsCluster(o: NatsClusterOptions): Promise<{ servers: NatsServer[]; stop(): Promise<void> }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsClusterOnce(o);
    } catch (err) {
      if (attempt >= 3 || !/address already in use|exited during start-up/i.test((err as Error).message)) throw err;
    }
  }
}

async function startNatsClusterOnce(o: NatsClusterOptions): Promise<{ servers: NatsServer[]; stop(): Promise<void> }> {
  const host = o.host ?? '127.0.0.1';
  const ports: { client: number; cluster: number; http: number }[] = [];
  for (const _ of o.names) ports.push({ client: await freePort(host), cluster: await freePort(host), http: await freePort(host) });
  const routes = o.names.length > 1 ? ports.map((p) => `nats-route://${host}:${p.cluster}`) : [];
  const servers: NatsServer[] = [];
  const stop = async () => {
    await Promise.all(servers.filter(Boolean).map((s) => s.stop()));
  };
  // Start all, and if any fails, stop every one that did start before rethrowing.
  const results = await Promise.allSettled(
    o.names.map(async (name, i) => {
      const p = ports[i] as { client: number; cluster: number; http: number };
      const tls = o.tls?.(name);
      const clusterTls = o.names.length > 1 ? o.clusterTls?.(name) : undefined;
      const maxFileStore = o.maxFileStore?.(name);
      servers[i] = await startNatsServer({
        name,
        host,
        clientPort: p.client,
        httpPort: p.http,
        ...(o.names.length > 1 ? { clusterPort: p.cluster, routes } : {}),
        storeDir: join(o.dir, name),
        dir: o.dir,
        ...(o.bin ? { bin: o.bin } : {}),
        ...(o.auth ? { auth: o.auth } : {}),
        ...(o.clusterAuth ? { clusterAuth: o.clusterAuth } : {}),
        ...(tls ? { tls } : {}),
        ...(clusterTls ? { clusterTls } : {}),
        ...(o.gomaxprocs !== undefined ? { gomaxprocs: o.gomaxprocs } : {}),
        ...(maxFileStore !== undefined ? { maxFileStore } : {}),
      });
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { servers, stop };
}

export interface NatsJoinOptions {
  /** The new server's name (also its placement tag). */
  readonly name: string;
  /** Route URLs of running servers of the cluster ({@link NatsServer.routeUrl}); one is enough. */
  readonly seeds: readonly string[];
  readonly dir: string;
  readonly host?: string;
  readonly bin?: string;
  /** The cluster's name (default replica, as {@link startNatsCluster} names it). */
  readonly clusterName?: string;
  readonly auth?: { readonly user: string; readonly password: string };
  readonly clusterAuth?: { readonly user: string; readonly password: string };
  readonly tls?: NatsServerOptions['tls'];
  readonly clusterTls?: NatsServerOptions['clusterTls'];
  readonly gomaxprocs?: number;
  /** How many servers it must end up routed to: every running server of the cluster. */
  readonly expectRoutes: number;
  /**
   * How long the server may take to be healthy and routed to them. Default 60 s: while
   * the cluster's JetStream meta leader is being re-elected (its server just died), a
   * joining server cannot report healthy, and on nats-server 2.9 that election took
   * 6–10 s here, sometimes over 20 s.
   */
  readonly joinTimeoutMs?: number;
}

/**
 * Starts one more nats-server, on free ports, and joins it to a running cluster through
 * route discovery: its config routes only to `seeds`, and the seeds gossip the other
 * servers' routes to it (and its route to them), so no running server is reconfigured or
 * restarted. Resolves once it is routed to `expectRoutes` servers and its JetStream is
 * healthy; its JetStream joins
 * the cluster's meta group, so a stream placed by its tag lands on it. Its config keeps
 * only the seeds: after a restart it finds the others again through them.
 */
export async function joinNatsCluster(o: NatsJoinOptions): Promise<NatsServer> {
  const host = o.host ?? '127.0.0.1';
  const deadline = Date.now() + (o.joinTimeoutMs ?? 60_000);
  for (let attempt = 1; ; attempt++) {
    let server: NatsServer | undefined;
    try {
      server = await startNatsServer({
        name: o.name,
        host,
        clientPort: await freePort(host),
        httpPort: await freePort(host),
        clusterPort: await freePort(host),
        routes: o.seeds,
        clusterName: o.clusterName ?? 'replica',
        storeDir: join(o.dir, o.name),
        dir: o.dir,
        ...(o.bin ? { bin: o.bin } : {}),
        ...(o.auth ? { auth: o.auth } : {}),
        ...(o.clusterAuth ? { clusterAuth: o.clusterAuth } : {}),
        ...(o.tls ? { tls: o.tls } : {}),
        ...(o.clusterTls ? { clusterTls: o.clusterTls } : {}),
        ...(o.gomaxprocs !== undefined ? { gomaxprocs: o.gomaxprocs } : {}),
        readyTimeoutMs: Math.max(1000, deadline - Date.now()),
      });
      await routedToAll(server, o.expectRoutes, deadline);
      return server;
    } catch (err) {
      await server?.stop();
      if (attempt >= 3 || !/address already in use|exited during start-up/i.test((err as Error).message)) throw err;
    }
  }
}

/** A server's id and the ids of the servers it has a route to, from its /routez (2.9 names no remote server). */
export async function routesOf(server: Pick<NatsServer, 'monitorUrl'>): Promise<{ id: string; routedTo: string[] }> {
  const r = await fetch(`${server.monitorUrl}/routez`, { signal: AbortSignal.timeout(2000) });
  const body = (await r.json()) as { server_id: string; routes?: { remote_id?: string }[] };
  return { id: body.server_id, routedTo: [...new Set((body.routes ?? []).map((x) => x.remote_id ?? '').filter(Boolean))].sort() };
}

/** Waits until `server` is routed to `expect` servers and reports JetStream healthy. */
async function routedToAll(server: NatsServer, expect: number, deadline: number): Promise<void> {
  for (;;) {
    let routed: string[] = [];
    let healthy = false;
    try {
      routed = (await routesOf(server)).routedTo;
      healthy = (await fetch(`${server.monitorUrl}/healthz?js-enabled-only=true`, { signal: AbortSignal.timeout(2000) })).ok;
    } catch {
      // not answering yet
    }
    if (routed.length >= expect && healthy) return;
    if (Date.now() > deadline) throw new Error(`nats-server ${server.name} routed to ${routed.length} servers (${routed.join(', ')}), expected ${expect}, JetStream ${healthy ? 'healthy' : 'not healthy'}; see ${server.logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

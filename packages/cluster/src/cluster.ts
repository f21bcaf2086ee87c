import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, joinNatsCluster, startNatsCluster, type NatsServer } from '@replica/transport-nats';
import type { CertificateAuthority } from '@replica/certs';
import { clusterCertificates, type CertificateFiles } from './certificates.js';
import { answersOk, pollUntil } from './poll.js';

/** `node apps/node/dist/main.js`, found through the workspace dependency. */
export const NODE_MAIN = join(dirname(createRequire(import.meta.url).resolve('@replica/node/package.json')), 'dist', 'main.js');

/** How long one readiness request may take; the next one follows 50 ms later. */
const HEALTH_REQUEST_TIMEOUT_MS = 1000;

export type ClusterTransport = 'plexus' | 'nats' | 'none';

export interface ClusterOptions {
  readonly nodes: number;
  readonly transport: ClusterTransport;
  /** Working directory (data, certificates, logs). Default: a new temp dir, removed on stop. */
  readonly dir?: string;
  /** Loopback address every node listens on. Default 127.0.0.1. */
  readonly host?: string;
  /** nats: how nodes publish (NATS_PUBLISH_MODE). Default per-write. */
  readonly natsMode?: 'per-write' | 'batched';
  /** nats: the nats-server binary (default: Debian's /usr/sbin/nats-server, else PATH). */
  readonly natsServerBin?: string;
  /** Node `name`'s DATA_DIR, e.g. on a filesystem of its own (default `<dir>/data/<name>`). */
  readonly dataDir?: (name: string, index: number) => string | undefined;
  /** Extra environment for every node (LOG_LEVEL, WRITE_DURABILITY, …). */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra environment for one node (applied after `env`), e.g. a clock offset for n2 only. */
  readonly nodeEnv?: (name: string, index: number) => Readonly<Record<string, string>>;
  /**
   * plexus: the address node `from` dials to reach peer `to` (default: the peer's own).
   * Tests put a fault-injecting proxy on a link this way.
   */
  readonly peerAddress?: (from: string, to: string, address: { host: string; port: number }) => { host: string; port: number } | Promise<{ host: string; port: number }>;
  /** plexus, or nats with `natsTls`: the CA to sign node (and nats-server) certificates with (default: a new one). */
  readonly ca?: CertificateAuthority;
  /** nats: user/password the nats-servers require from clients (the nodes get them in NATS_URL) and on routes. */
  readonly natsAuth?: { readonly user: string; readonly password: string };
  /**
   * nats: TLS everywhere. Every nats-server gets a certificate from the CA, requires TLS
   * and a client certificate from clients (`verify`), and uses TLS on its routes; every
   * node gets a client certificate (NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY).
   */
  readonly natsTls?: boolean;
  /**
   * nats: GOMAXPROCS of every nats-server. Default: the host's cores divided among the
   * servers it starts, at least 1 — on one host they share it as they would hosts.
   */
  readonly natsGomaxprocs?: number;
  /** nats: `max_file_store` of node `name`'s nats-server (default 8GB): a JetStream store that fills up. */
  readonly natsMaxFileStore?: (name: string) => string | undefined;
  /** Extra Node.js options for every node process (e.g. `--cpu-prof`). */
  readonly execArgv?: readonly string[];
  /** How long start-up and peer links may take. Default 30 s. */
  readonly readyTimeoutMs?: number;
}

export interface ClusterNode {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly logFile: string;
}

export interface Cluster {
  readonly dir: string;
  readonly nodes: readonly ClusterNode[];
  /** nats: one nats-server per node, in node order. */
  readonly natsServers: readonly NatsServer[];
  /** Sends `signal` to node i and waits until it exited. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts node i again with its data and ports, once kill(i) has stopped it; rejects while it runs. */
  restart(i: number): Promise<void>;
  /** Waits until every running member reports a link up with every other member. */
  waitConnected(timeoutMs?: number): Promise<void>;
  /** Waits until every running member answers /ready with 200 (caught up with its peers); startCluster does this before it resolves. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** The ADMIN_TOKEN every node has (the cluster's admin API: `/cluster/members`). */
  readonly adminToken: string;
  /**
   * Grows the running cluster by one node: adds it to the member list through node
   * `seed`'s admin API, then starts it. plexus: with only that node in PEERS, so that it
   * learns the rest from the replicated member list. nats: on a new nats-server that
   * joins the NATS cluster through the seed node's server (route gossip; no running
   * server is reconfigured), its stream placed there; the other nodes find its stream.
   * Resolves once it answers /health (not /ready: it may still be catching up).
   */
  add(opts?: { readonly seed?: number }): Promise<ClusterNode>;
  /** Removes node i from the member list through node `via`'s admin API (default: the first other running member); the process keeps running. */
  remove(i: number, opts?: { readonly via?: number }): Promise<void>;
  /** Stops every process (SIGTERM, then SIGKILL after 10 s); removes a temp dir. Idempotent. */
  stop(): Promise<void>;
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  log: WriteStream;
}

/** Every cluster started by this process, stopped if the process exits without stop(). */
const live = new Set<Map<number, Running>>();
process.once('exit', () => {
  for (const procs of live) for (const p of procs.values()) p.child.kill('SIGKILL');
});
/** stop() of every cluster still running, for a clean shutdown on a signal. */
const running = new Set<() => Promise<void>>();

/** Stops every cluster this process started and has not stopped yet (for SIGINT/SIGTERM handlers). */
export async function stopAllClusters(): Promise<void> {
  await Promise.all([...running].map((stop) => stop()));
}

/**
 * Starts `opts.nodes` Replica nodes (n1…nN) as processes, each with its own data
 * directory and ports; for plexus it also creates the cluster CA and node
 * certificates. Resolves once every node listens and, for a replicated cluster, every
 * peer link is up.
 */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 32) throw new Error('nodes must be 1 to 32');
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'replica-cluster-'));
  mkdirSync(dir, { recursive: true });
  const host = opts.host ?? '127.0.0.1';
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const names = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
  const httpPorts: number[] = [];
  const replPorts: number[] = [];
  for (let i = 0; i < names.length; i++) {
    httpPorts.push(await freePort(host));
    replPorts.push(await freePort(host));
  }

  const adminToken = opts.env?.['ADMIN_TOKEN'] ?? randomBytes(16).toString('hex');
  const dataDirOf = (name: string, i: number) => opts.dataDir?.(name, i) ?? join(dir, 'data', name);
  const baseEnv = (name: string, i: number): Record<string, string> => ({
    PATH: process.env['PATH'] ?? '',
    NODE_NAME: name,
    HOST: host,
    PORT: String(httpPorts[i]),
    DATA_DIR: dataDirOf(name, i),
    REPLICATION_TRANSPORT: opts.transport,
    LOG_LEVEL: 'info',
    ADMIN_TOKEN: adminToken,
    ...opts.env,
  });
  const envs: Record<string, string>[] = names.map(baseEnv);
  const certs = opts.transport === 'plexus' ? await clusterCertificates(join(dir, 'certs'), host, opts.ca) : undefined;
  /** The PEERS entry node `from` reaches node j by. */
  const peerEntry = async (from: string, j: number): Promise<string> => {
    const own = { host, port: replPorts[j] as number };
    const peer = names[j] as string;
    const a = from === peer || !opts.peerAddress ? own : await opts.peerAddress(from, peer, own);
    return `${peer}@${a.host}:${a.port}`;
  };
  /** plexus: node i's replication settings, with PEERS listing `peers` (node indexes). */
  const plexusEnv = async (i: number, peers: readonly number[]): Promise<Record<string, string>> => {
    const name = names[i] as string;
    const files = await (certs as NonNullable<typeof certs>).issue(name);
    return {
      PEERS: (await Promise.all(peers.map((j) => peerEntry(name, j)))).join(','),
      REPLICATION_HOST: host,
      REPLICATION_PORT: String(replPorts[i]),
      TLS_CA: (certs as NonNullable<typeof certs>).caFile,
      TLS_CERT: files.cert,
      TLS_KEY: files.key,
    };
  };
  if (opts.transport === 'plexus') {
    for (const i of names.keys()) Object.assign(envs[i] as Record<string, string>, await plexusEnv(i, [...names.keys()]));
  }

  const natsServers: NatsServer[] = [];
  let stopNats = async () => {};
  let tls: NatsCertificates | undefined;
  const gomaxprocs = opts.natsGomaxprocs ?? Math.max(1, Math.floor(availableParallelism() / names.length));
  /** nats: node `name`'s settings, its nats-server given. */
  const natsEnv = (name: string, server: NatsServer): Record<string, string> => ({
    NATS_URL: server.url,
    NATS_PLACEMENT: `replica:${name}`,
    NATS_PUBLISH_MODE: opts.natsMode ?? 'per-write',
    ...(tls ? { NATS_TLS_CA: tls.ca, NATS_TLS_CERT: tls.node(name).cert, NATS_TLS_KEY: tls.node(name).key } : {}),
  });
  if (opts.transport === 'nats') {
    tls = opts.natsTls ? await natsCertificates(join(dir, 'certs'), host, opts.ca) : undefined;
    for (const name of names) await tls?.issue(name);
    const serverTls = tls;
    const nats = await startNatsCluster({
      names,
      dir: join(dir, 'nats'),
      host,
      ...(opts.natsServerBin ? { bin: opts.natsServerBin } : {}),
      ...(opts.natsAuth ? { auth: opts.natsAuth, clusterAuth: opts.natsAuth } : {}),
      ...(serverTls ? { tls: (name: string) => ({ ...serverTls.server(name), verify: true }), clusterTls: serverTls.server } : {}),
      ...(opts.natsMaxFileStore ? { maxFileStore: opts.natsMaxFileStore } : {}),
      gomaxprocs,
    });
    natsServers.push(...nats.servers);
    // servers joined later are stopped too
    stopNats = async () => {
      await Promise.all(natsServers.map((s) => s.stop()));
    };
    for (const [i, name] of names.entries()) Object.assign(envs[i] as Record<string, string>, natsEnv(name, natsServers[i] as NatsServer));
  }
  /** nats: starts node `name`'s nats-server, joined to the running NATS cluster through node `seed`'s server. */
  const joinNats = async (name: string, seed: number): Promise<NatsServer> => {
    await tls?.issue(name);
    const running = natsServers.filter((s) => s.running);
    const server = await joinNatsCluster({
      name,
      seeds: [(natsServers[seed] as NatsServer).routeUrl as string],
      dir: join(dir, 'nats'),
      host,
      expectRoutes: running.length,
      ...(opts.natsServerBin ? { bin: opts.natsServerBin } : {}),
      ...(opts.natsAuth ? { auth: opts.natsAuth, clusterAuth: opts.natsAuth } : {}),
      ...(tls ? { tls: { ...tls.server(name), verify: true }, clusterTls: tls.server(name) } : {}),
      gomaxprocs,
    });
    natsServers.push(server);
    return server;
  };

  if (opts.nodeEnv) for (const [i, name] of names.entries()) Object.assign(envs[i] as Record<string, string>, opts.nodeEnv(name, i));

  const procs = new Map<number, Running>();
  live.add(procs);
  const nodes: ClusterNode[] = names.map((name, i) => ({
    name,
    url: `http://${host}:${httpPorts[i]}`,
    pid: 0,
    dataDir: dataDirOf(name, i),
    logFile: join(dir, `${name}.log`),
  }));

  const launch = async (i: number): Promise<void> => {
    const node = nodes[i] as ClusterNode;
    // A running predecessor would answer /health for its successor, which cannot bind its port.
    const previous = procs.get(i)?.child;
    if (previous && previous.exitCode === null && previous.signalCode === null) throw new Error(`${node.name} is still running (pid ${previous.pid}); kill it before restarting it`);
    const log = createWriteStream(node.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [...(opts.execArgv ?? []), NODE_MAIN], { env: envs[i], stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    procs.set(i, { child, exited, log });
    nodes[i] = { ...node, pid: child.pid ?? 0 };
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    void exited.then(() => log.end());
    // What the node printed last (errors before its logger exists go to stderr), for the
    // message if it exits during start-up.
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4096);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    // /health answers 503 until the transport started, and nothing before the API listens.
    const ready = await pollUntil(() => answersOk(`${node.url}/health`, HEALTH_REQUEST_TIMEOUT_MS, node.name), { deadline: Date.now() + readyTimeoutMs, intervalMs: 50, stop: exited });
    child.stdout.off('data', keep);
    child.stderr.off('data', keep);
    if (ready === 'stopped') throw new Error(`${node.name} exited during start-up; see ${node.logFile}:\n${tail}`);
    if (ready === 'timeout') {
      child.kill('SIGKILL');
      throw new Error(`${node.name} did not start within ${readyTimeoutMs} ms; see ${node.logFile}`);
    }
  };

  const kill = async (i: number, signal: NodeJS.Signals = 'SIGKILL') => {
    const p = procs.get(i);
    if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
    p.child.kill(signal);
    await p.exited;
  };

  /** Indexes of the nodes removed from the member list. */
  const removed = new Set<number>();
  const isRunning = (i: number) => {
    const p = procs.get(i);
    return p !== undefined && p.child.exitCode === null && p.child.signalCode === null;
  };

  const waitConnected = async (timeoutMs = readyTimeoutMs) => {
    const members = names.length - removed.size;
    if (opts.transport === 'none' || members < 2) return;
    const deadline = Date.now() + timeoutMs;
    for (const [i, node] of nodes.entries()) {
      if (!isRunning(i) || removed.has(i)) continue;
      const linked = async () => {
        const s = (await (await fetch(`${node.url}/status`)).json()) as { replication: { peers: { connected: boolean }[] } };
        return s.replication.peers.length === members - 1 && s.replication.peers.every((x) => x.connected);
      };
      if ((await pollUntil(linked, { deadline, intervalMs: 100 })) === 'timeout') throw new Error(`peer links of ${node.name} not all up within ${timeoutMs} ms`);
    }
  };

  /** Waits until every running member answers /ready with 200: caught up with its peers. */
  const waitReady = async (timeoutMs = readyTimeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (const [i, node] of nodes.entries()) {
      if (!isRunning(i) || removed.has(i)) continue;
      if ((await pollUntil(() => answersOk(`${node.url}/ready`, HEALTH_REQUEST_TIMEOUT_MS, node.name), { deadline, intervalMs: 50 })) === 'timeout') {
        const why = await fetch(`${node.url}/ready`).then((r) => r.text()).catch((e: Error) => e.message);
        throw new Error(`${node.name} not ready within ${timeoutMs} ms: ${why}`);
      }
    }
  };

  /** Calls node `via`'s admin API; throws with the answer unless it is `expect`. */
  const admin = async (via: number, method: string, path: string, expect: number, body?: unknown): Promise<void> => {
    const res = await fetch(`${(nodes[via] as ClusterNode).url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (res.status !== expect) throw new Error(`${method} ${path} on ${(nodes[via] as ClusterNode).name}: ${res.status} ${await res.text()}`);
  };

  const firstMember = (except: number): number => {
    const i = [...nodes.keys()].find((j) => j !== except && !removed.has(j) && isRunning(j));
    if (i === undefined) throw new Error('no running member to ask');
    return i;
  };

  const add = async (addOpts: { readonly seed?: number } = {}): Promise<ClusterNode> => {
    if (opts.transport === 'none') throw new Error('a cluster without replication has no members to add');
    const seed = addOpts.seed ?? firstMember(-1);
    const i = names.length;
    const name = `n${i + 1}`;
    // nats: the server first, so that a failed join leaves the member list as it was
    const server = opts.transport === 'nats' ? await joinNats(name, seed) : undefined;
    names.push(name);
    httpPorts.push(await freePort(host));
    replPorts.push(await freePort(host));
    envs.push(baseEnv(name, i));
    Object.assign(envs[i] as Record<string, string>, server ? natsEnv(name, server) : await plexusEnv(i, [seed]));
    if (opts.nodeEnv) Object.assign(envs[i] as Record<string, string>, opts.nodeEnv(name, i));
    nodes.push({ name, url: `http://${host}:${httpPorts[i]}`, pid: 0, dataDir: dataDirOf(name, i), logFile: join(dir, `${name}.log`) });
    await admin(seed, 'POST', '/cluster/members', 201, server ? { name } : { name, address: `${host}:${replPorts[i]}` });
    await launch(i);
    return nodes[i] as ClusterNode;
  };

  const remove = async (i: number, removeOpts: { readonly via?: number } = {}): Promise<void> => {
    const via = removeOpts.via ?? firstMember(i);
    await admin(via, 'DELETE', `/cluster/members/${(nodes[i] as ClusterNode).name}`, 200);
    removed.add(i);
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    running.delete(stop);
    await Promise.all(
      [...procs.keys()].map(async (i) => {
        const p = procs.get(i) as Running;
        const force = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
        await kill(i, 'SIGTERM');
        clearTimeout(force);
      }),
    );
    live.delete(procs);
    await stopNats();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  running.add(stop);
  try {
    await Promise.all(names.map((_, i) => launch(i)));
    await waitConnected();
    await waitReady();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    get nodes() {
      return nodes;
    },
    natsServers,
    kill,
    restart: (i) => launch(i),
    waitConnected,
    waitReady,
    adminToken,
    add,
    remove,
    stop,
  };
}

interface NatsCertificates {
  readonly ca: string;
  /** Issues node `name`'s certificates (its nats-server's and its own); once per name. */
  issue(name: string): Promise<void>;
  server(name: string): { ca: string } & CertificateFiles;
  node(name: string): CertificateFiles;
}

/**
 * Writes `ca.crt` into `certDir` and, signed by that CA, on issue(name): a certificate and
 * key for node `name`'s nats-server (`nats-<name>`, for clients and routes) and for the
 * node (`<name>`, its client certificate); returns their paths.
 */
async function natsCertificates(certDir: string, host: string, given: CertificateAuthority | undefined): Promise<NatsCertificates> {
  const certs = await clusterCertificates(certDir, host, given);
  const servers = new Map<string, CertificateFiles>();
  const nodes = new Map<string, CertificateFiles>();
  const get = (m: Map<string, CertificateFiles>, name: string) => m.get(name) as CertificateFiles;
  return {
    ca: certs.caFile,
    async issue(name) {
      if (nodes.has(name)) return;
      servers.set(name, await certs.issue(`nats-${name}`));
      nodes.set(name, await certs.issue(name));
    },
    server: (name) => ({ ca: certs.caFile, ...get(servers, name) }),
    node: (name) => get(nodes, name),
  };
}

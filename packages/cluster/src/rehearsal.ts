// A cluster on several "hosts" of one machine: one network namespace per node (and per
// nats-server), one for a client, joined by a bridge. Every process binds its host's own
// address, so replication crosses the bridge as it would cross a network.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { natsServerBinary, natsServerConfig } from '@replica/transport-nats';
import { clusterCertificates } from './certificates.js';
import { NODE_MAIN } from './cluster.js';
import { createHostNetwork, hostNetworkUnavailable, removeStaleHostNetworks, type HostNetwork, type NamespaceHost } from './netns.js';
import { pollUntil } from './poll.js';

/** The ports every host uses: each has an address of its own, so they never clash. */
export const REHEARSAL_PORTS = Object.freeze({ http: 8080, replication: 9800, natsClient: 4222, natsCluster: 6222, natsMonitor: 8222 });

export interface RehearsalOptions {
  readonly transport: 'plexus' | 'nats';
  /** How many node hosts (n1…nN at 198.18.0.1…N). Default 3; 1 to 32. */
  readonly hosts?: number;
  /** nats: how nodes publish (NATS_PUBLISH_MODE). Default per-write. */
  readonly natsMode?: 'per-write' | 'batched';
  /** nats: the nats-server binary (default: Debian's /usr/sbin/nats-server, else PATH). */
  readonly natsServerBin?: string;
  /** Extra environment for every node (LOG_LEVEL, WRITE_DURABILITY, …). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long start-up and peer links may take. Default 30 s. */
  readonly readyTimeoutMs?: number;
}

export interface RehearsalNode extends NamespaceHost {
  /** `http://<address>:8080`, reachable from the client namespace (not from this one). */
  readonly url: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly logFile: string;
}

export interface RehearsalNatsServer extends NamespaceHost {
  /** `nats://<address>:4222`. */
  readonly url: string;
  readonly routeUrl: string;
  /** `http://<address>:8222`: /healthz, /routez, /jsz. */
  readonly monitorUrl: string;
  readonly pid: number;
  readonly configFile: string;
  readonly logFile: string;
}

export interface ExecResult {
  /** Exit code, or null when a signal ended it. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Rehearsal {
  readonly transport: RehearsalOptions['transport'];
  /** Working directory (data, certificates, configs, logs); removed by stop(). */
  readonly dir: string;
  readonly nodes: readonly RehearsalNode[];
  /** nats: one server per node host, in the node's namespace, in node order. */
  readonly natsServers: readonly RehearsalNatsServer[];
  /** The client host (198.18.0.254): where fetch() and exec() run. */
  readonly client: NamespaceHost;
  /** Every namespace it created: the hosts' and the bridge's. */
  readonly namespaces: readonly string[];
  /** The ADMIN_TOKEN every node has (`/cluster/members`). */
  readonly adminToken: string;
  /**
   * An HTTP request made from the client namespace (the nodes' addresses are not
   * reachable from this process's own). Resolves with the whole answer; rejects when no
   * answer came within `timeoutMs` (default 10 s) or the connection failed.
   */
  fetch(url: string, init?: { readonly method?: string; readonly headers?: Readonly<Record<string, string>>; readonly body?: string; readonly timeoutMs?: number }): Promise<Response>;
  /**
   * Runs `argv` in the client namespace (`ip netns exec`), with this process's environment
   * plus `env` and `input` on its stdin, and resolves when it exits, whatever its exit
   * code; killed (SIGKILL) after `timeoutMs` (default 5 min) and by stop().
   */
  exec(argv: readonly string[], opts?: { readonly env?: Readonly<Record<string, string>>; readonly cwd?: string; readonly input?: string; readonly timeoutMs?: number }): Promise<ExecResult>;
  /**
   * Stops every process (nodes with SIGTERM, SIGKILL after 10 s), kills whatever still runs
   * in its namespaces, deletes the namespaces (and so the bridge and veth pairs) and the
   * working directory. Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * Why a rehearsal cannot run on this machine (not Linux, not root, no `ip`, namespaces
 * refused), or undefined when it can.
 */
export const rehearsalUnavailable = hostNetworkUnavailable;

/** The fetch() of the client namespace: a small process there, asked over its IPC channel. */
const AGENT_SOURCE = `
process.on('message', async (m) => {
  let reply;
  try {
    const res = await fetch(m.url, { method: m.method, headers: m.headers, body: m.body, signal: AbortSignal.timeout(m.timeoutMs) });
    reply = { id: m.id, status: res.status, headers: [...res.headers], body: await res.text() };
  } catch (err) {
    reply = { id: m.id, error: String((err && err.cause && err.cause.message) || (err && err.message) || err) };
  }
  if (process.connected) process.send(reply);
});
process.on('disconnect', () => process.exit(0));
`;

interface Reply {
  id: number;
  status?: number;
  headers?: [string, string][];
  body?: string;
  error?: string;
}

/** Rehearsals of this process not stopped yet: killed and removed if it exits without stop(). */
const live = new Set<() => void>();
process.once('exit', () => {
  for (const abandon of live) abandon();
});

/**
 * Builds the hosts (namespaces `rpl-<pid>-<n>-n1…nN`, `…-client`, `…-br`; leftovers of
 * crashed earlier runs are removed first), then starts, for nats, one clustered
 * nats-server with JetStream per node host, and one node per node host, each bound to its
 * host's address for REST and replication; for plexus with a certificate whose CN is the
 * node's name and whose SANs carry its address. Resolves once every node answers /health,
 * has every peer link up and answers /ready. If anything fails, everything it made is
 * removed before it rejects.
 */
export async function startRehearsal(opts: RehearsalOptions): Promise<Rehearsal> {
  const unavailable = rehearsalUnavailable();
  if (unavailable) throw new Error(`a multi-host rehearsal cannot run here: ${unavailable}`);
  const hostCount = opts.hosts ?? 3;
  if (!Number.isInteger(hostCount) || hostCount < 1 || hostCount > 32) throw new Error('hosts must be 1 to 32');
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  removeStaleHostNetworks();

  const names = Array.from({ length: hostCount }, (_, i) => `n${i + 1}`);
  const net: HostNetwork = createHostNetwork([...names.map((name, i) => ({ name, address: `198.18.0.${i + 1}` })), { name: 'client', address: '198.18.0.254' }]);
  const hosts = net.hosts.slice(0, hostCount);
  const client = net.hosts[hostCount] as NamespaceHost;
  let dir: string | undefined;
  const children = new Set<ChildProcess>();
  const exited = new Map<ChildProcess, Promise<void>>();
  /** Spawns `argv` in `namespace` through `ip netns exec`, which execs it: the child's PID is the command's. */
  const spawnIn = (namespace: string, argv: readonly string[], o: { env: NodeJS.ProcessEnv; stdio: StdioOptions; cwd?: string }): ChildProcess => {
    const child = spawn(net.ip, ['netns', 'exec', namespace, ...argv], { env: o.env, stdio: o.stdio, ...(o.cwd ? { cwd: o.cwd } : {}) });
    children.add(child);
    exited.set(
      child,
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.once('error', () => resolve());
      }),
    );
    void exited.get(child)?.then(() => children.delete(child));
    return child;
  };
  const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null && children.has(c);

  const abandon = () => {
    for (const c of children) c.kill('SIGKILL');
    try {
      net.destroy();
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  };
  live.add(abandon);

  let agent: ChildProcess | undefined;
  const pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const fetchIn: Rehearsal['fetch'] = async (url, init = {}) => {
    const a = agent;
    if (!a || !a.connected) throw new Error('the rehearsal is stopped');
    const id = ++nextId;
    const reply = await new Promise<Reply>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      a.send({ id, url, method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body, timeoutMs: init.timeoutMs ?? 10_000 });
    });
    if (reply.error !== undefined || reply.status === undefined) throw new Error(`${init.method ?? 'GET'} ${url} from ${client.namespace}: ${reply.error}`);
    const nullBody = [101, 204, 205, 304].includes(reply.status);
    return new Response(nullBody ? null : (reply.body ?? ''), { status: reply.status, headers: reply.headers ?? [] });
  };

  /** Whether `url`, asked from the client namespace, answers 200 within 1 s (with a body `check` accepts). */
  const answers = async (url: string, check: (body: string) => boolean = () => true): Promise<boolean> => {
    const r = await fetchIn(url, { timeoutMs: 1000 });
    return r.status === 200 && check(await r.text());
  };

  const exec: Rehearsal['exec'] = async (argv, o = {}) => {
    const child = spawnIn(client.namespace, argv, { env: { ...process.env, ...o.env }, stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(o.cwd ? { cwd: o.cwd } : {}) });
    child.stdin?.on('error', () => {}); // it may exit without reading it all
    child.stdin?.end(o.input);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 300_000);
    // 'close' follows 'exit' once its output is read; a descendant still holding the pipes
    // must not keep exec() waiting after the command itself exited
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    await exited.get(child);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
    clearTimeout(timer);
    return { code: child.exitCode, signal: child.signalCode, stdout, stderr };
  };

  const nodes: RehearsalNode[] = [];
  const natsServers: RehearsalNatsServer[] = [];
  const nodeProcs: ChildProcess[] = [];
  const natsProcs: ChildProcess[] = [];
  const adminToken = randomBytes(16).toString('hex');

  /** SIGTERM, SIGKILL after 10 s; resolves once it exited. */
  const terminate = async (c: ChildProcess) => {
    if (!running(c)) return;
    const force = setTimeout(() => c.kill('SIGKILL'), 10_000);
    c.kill('SIGTERM');
    await exited.get(c);
    clearTimeout(force);
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await Promise.all(nodeProcs.map(terminate));
      await Promise.all(natsProcs.map(terminate));
      if (agent?.connected) agent.disconnect();
      for (const c of children) c.kill('SIGKILL');
      await Promise.all([...children].map((c) => exited.get(c)));
      for (const p of pending.values()) p.reject(new Error('the rehearsal stopped'));
      pending.clear();
    } finally {
      live.delete(abandon);
      abandon();
    }
  };

  try {
    dir = mkdtempSync(join(tmpdir(), `replica-rehearsal-${net.prefix.slice('rpl-'.length)}`));

    agent = spawnIn(client.namespace, [process.execPath, '-e', AGENT_SOURCE], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const agentExited = exited.get(agent);
    agent.on('message', (m: Reply) => {
      const p = pending.get(m.id);
      pending.delete(m.id);
      p?.resolve(m);
    });
    void agentExited?.then(() => {
      for (const p of pending.values()) p.reject(new Error(`the fetch agent in ${client.namespace} exited`));
      pending.clear();
    });

    const logOpen = (file: string) => openSync(file, 'a');
    const tail = (file: string) => readFileSync(file, 'utf8').split('\n').slice(-12).join('\n');
    const P = REHEARSAL_PORTS;

    if (opts.transport === 'nats') {
      const natsDir = join(dir, 'nats');
      mkdirSync(natsDir, { recursive: true });
      const routes = hosts.map((h) => `nats-route://${h.address}:${P.natsCluster}`);
      const gomaxprocs = Math.max(1, Math.floor(availableParallelism() / hostCount));
      for (const h of hosts) {
        const configFile = join(natsDir, `${h.name}.conf`);
        const logFile = join(natsDir, `${h.name}.log`);
        writeFileSync(
          configFile,
          natsServerConfig({
            name: h.name,
            host: h.address,
            clientPort: P.natsClient,
            httpPort: P.natsMonitor,
            ...(hostCount > 1 ? { clusterPort: P.natsCluster, routes } : {}),
            storeDir: join(natsDir, h.name),
          }),
        );
        const fd = logOpen(logFile);
        const child = spawnIn(h.namespace, [natsServerBinary(opts.natsServerBin), '-c', configFile], { env: { PATH: process.env['PATH'] ?? '', GOMAXPROCS: String(gomaxprocs) }, stdio: ['ignore', fd, fd] });
        closeSync(fd);
        natsProcs.push(child);
        natsServers.push({
          ...h,
          url: `nats://${h.address}:${P.natsClient}`,
          routeUrl: `nats-route://${h.address}:${P.natsCluster}`,
          monitorUrl: `http://${h.address}:${P.natsMonitor}`,
          pid: child.pid ?? 0,
          configFile,
          logFile,
        });
      }
      await Promise.all(
        natsServers.map(async (s, i) => {
          const r = await pollUntil(() => answers(`${s.monitorUrl}/healthz`), { deadline: Date.now() + readyTimeoutMs, intervalMs: 100, stop: exited.get(natsProcs[i] as ChildProcess) as Promise<void> });
          if (r !== 'done') throw new Error(`nats-server ${s.name} in ${s.namespace} ${r === 'stopped' ? 'exited during start-up' : `not healthy within ${readyTimeoutMs} ms`}:\n${tail(s.logFile)}`);
        }),
      );
    }

    const certs = opts.transport === 'plexus' ? await clusterCertificates(join(dir, 'certs'), hosts[0]?.address ?? '', undefined) : undefined;
    const peers = hosts.map((h) => `${h.name}@${h.address}:${P.replication}`).join(',');
    for (const h of hosts) {
      const dataDir = join(dir, 'data', h.name);
      const logFile = join(dir, `${h.name}.log`);
      const env: Record<string, string> = {
        PATH: process.env['PATH'] ?? '',
        NODE_NAME: h.name,
        HOST: h.address,
        PORT: String(P.http),
        DATA_DIR: dataDir,
        REPLICATION_TRANSPORT: opts.transport,
        LOG_LEVEL: 'info',
        ADMIN_TOKEN: adminToken,
      };
      if (certs) {
        const files = await certs.issue(h.name, [h.name, h.address]);
        Object.assign(env, { PEERS: peers, REPLICATION_HOST: h.address, REPLICATION_PORT: String(P.replication), TLS_CA: certs.caFile, TLS_CERT: files.cert, TLS_KEY: files.key });
      } else {
        // its own server first, the others as fallbacks (docs/configuration.md)
        const own = natsServers.find((s) => s.name === h.name) as RehearsalNatsServer;
        Object.assign(env, {
          NATS_URL: [own, ...natsServers.filter((s) => s !== own)].map((s) => s.url).join(','),
          NATS_PLACEMENT: `replica:${h.name}`,
          NATS_PUBLISH_MODE: opts.natsMode ?? 'per-write',
        });
      }
      Object.assign(env, opts.env);
      const fd = logOpen(logFile);
      const child = spawnIn(h.namespace, [process.execPath, NODE_MAIN], { env, stdio: ['ignore', fd, fd] });
      closeSync(fd);
      nodeProcs.push(child);
      nodes.push({ ...h, url: `http://${h.address}:${P.http}`, pid: child.pid ?? 0, dataDir, logFile });
    }

    const deadline = Date.now() + readyTimeoutMs;
    // /health answers 503 until the transport started, and nothing before the API listens.
    await Promise.all(
      nodes.map(async (n, i) => {
        const isNode = (body: string) => (JSON.parse(body) as { node?: unknown }).node === n.name;
        const r = await pollUntil(() => answers(`${n.url}/health`, isNode), { deadline, intervalMs: 100, stop: exited.get(nodeProcs[i] as ChildProcess) as Promise<void> });
        if (r !== 'done') throw new Error(`${n.name} in ${n.namespace} ${r === 'stopped' ? 'exited during start-up' : `did not answer /health within ${readyTimeoutMs} ms`}; ${n.logFile}:\n${tail(n.logFile)}`);
      }),
    );
    for (const n of nodes) {
      const linked = (body: string) => {
        const peersOf = (JSON.parse(body) as { replication: { peers: { connected: boolean }[] } }).replication.peers;
        return peersOf.length === hostCount - 1 && peersOf.every((p) => p.connected);
      };
      if ((await pollUntil(() => answers(`${n.url}/status`, linked), { deadline, intervalMs: 100 })) !== 'done') throw new Error(`peer links of ${n.name} not all up within ${readyTimeoutMs} ms; ${n.logFile}:\n${tail(n.logFile)}`);
      if ((await pollUntil(() => answers(`${n.url}/ready`), { deadline, intervalMs: 100 })) !== 'done') throw new Error(`${n.name} not ready within ${readyTimeoutMs} ms; ${n.logFile}:\n${tail(n.logFile)}`);
    }
  } catch (err) {
    // the start's own failure is the one to report; a cleanup failure is added to it
    await stop().catch((cleanup: Error) => {
      if (err instanceof Error) err.message += `\n(and cleaning up failed: ${cleanup.message})`;
    });
    throw err;
  }

  return {
    transport: opts.transport,
    dir,
    nodes,
    natsServers,
    client,
    namespaces: net.namespaces,
    adminToken,
    fetch: fetchIn,
    exec,
    stop,
  };
}

// Hosts made of Linux network namespaces on one machine, joined by a bridge that lives in
// a namespace of its own: nothing is added to the machine's own network namespace.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** One host: a network namespace with one interface (`eth0`) on the bridge. */
export interface NamespaceHost {
  /** The host's name (`n1`, `client`). */
  readonly name: string;
  /** Its network namespace (`ip netns exec <namespace> …`). */
  readonly namespace: string;
  /** Its IPv4 address on the bridge. */
  readonly address: string;
}

export interface HostNetwork {
  /** Every name this network created starts with it: `rpl-<pid>-<n>-`. */
  readonly prefix: string;
  readonly hosts: readonly NamespaceHost[];
  /** The namespace that holds the bridge (`br0`) and the hosts' far ends of their veth pairs. */
  readonly bridgeNamespace: string;
  /** The hosts' namespaces and the bridge's. */
  readonly namespaces: readonly string[];
  /** The path of `ip`, for `ip netns exec`. */
  readonly ip: string;
  /**
   * Kills every process still in its namespaces (by PID, as `ip netns pids` lists them)
   * and deletes the namespaces, which removes the bridge and the veth pairs with them.
   * Synchronous, so that it can run in an `exit` handler; idempotent.
   */
  destroy(): void;
}

/** Namespaces, temp dirs: every name a host network or a rehearsal makes starts `rpl-<pid>-`. */
const NAME = /^rpl-(\d+)-/;
/** Temp dirs of rehearsals: `<tmpdir>/replica-rehearsal-<pid>-…`. */
const TEMP_DIR = /^replica-rehearsal-(\d+)-/;

let sequence = 0;

/** A prefix no other host network, of this process or another, uses while this process lives. */
export function uniquePrefix(): string {
  return `rpl-${process.pid}-${++sequence}-`;
}

/** `ip` from iproute2: the usual places, then PATH; undefined when there is none. */
export function ipBinary(): string | undefined {
  const dirs = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', ...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean)];
  return dirs.map((d) => join(d, 'ip')).find((p) => existsSync(p));
}

let support: string | undefined | null = null;

/**
 * Why host networks cannot be built here (not root, no `ip`, namespaces refused, as in a
 * container without CAP_SYS_ADMIN), or undefined when they can: tried once per process by
 * adding and deleting a namespace.
 */
export function hostNetworkUnavailable(): string | undefined {
  if (support !== null) return support;
  const ip = ipBinary();
  if (process.platform !== 'linux') support = `network namespaces are Linux only (this is ${process.platform})`;
  else if (process.getuid?.() !== 0) support = `needs root to create network namespaces (running as uid ${process.getuid?.()})`;
  else if (!ip) support = "needs iproute2's ip (not found in /usr/sbin, /sbin, /usr/bin, /bin or PATH)";
  else {
    const probe = `rpl-${process.pid}-probe`;
    try {
      run(ip, ['netns', 'add', probe]);
      run(ip, ['netns', 'del', probe]);
      support = undefined;
    } catch (err) {
      support = `cannot create a network namespace here (${(err as Error).message.split('\n')[0]})`;
    }
  }
  return support;
}

function run(ip: string, args: readonly string[]): string {
  try {
    return execFileSync(ip, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** The names `ip netns list` prints (it adds ` (id: n)` to some). */
function listNamespaces(ip: string): string[] {
  return run(ip, ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

/** Kills what runs in `namespace` (SIGKILL, by PID) and deletes it; nothing when it does not exist. */
function removeNamespace(ip: string, namespace: string): void {
  let pids: number[] = [];
  try {
    pids = run(ip, ['netns', 'pids', namespace]).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return; // no such namespace
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  try {
    run(ip, ['netns', 'del', namespace]);
  } catch (err) {
    if (listNamespaces(ip).includes(namespace)) throw err;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes what crashed host networks and rehearsals left: the namespaces named
 * `rpl-<pid>-…` (and the processes still in them) and the temp dirs named
 * `replica-rehearsal-<pid>-…` of processes that no longer run. Returns what it removed.
 */
export function removeStaleHostNetworks(): string[] {
  const ip = ipBinary();
  const removed: string[] = [];
  if (ip) {
    for (const ns of listNamespaces(ip)) {
      const pid = Number(NAME.exec(ns)?.[1] ?? Number.NaN);
      if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
        removeNamespace(ip, ns);
        removed.push(ns);
      }
    }
  }
  for (const entry of readdirSync(tmpdir())) {
    const pid = Number(TEMP_DIR.exec(entry)?.[1] ?? Number.NaN);
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
      rmSync(join(tmpdir(), entry), { recursive: true, force: true });
      removed.push(join(tmpdir(), entry));
    }
  }
  return removed;
}

/**
 * Builds one namespace per host, each with `eth0` at its address (`/prefixLength`) and
 * `lo` up, their veth peers enslaved to a bridge in a namespace of its own. Namespaces of
 * the same names left by an earlier run are removed first; if building fails, everything
 * built so far is removed before it throws.
 */
export function createHostNetwork(hosts: readonly { readonly name: string; readonly address: string }[], opts: { readonly prefix?: string; readonly prefixLength?: number } = {}): HostNetwork {
  const ip = ipBinary();
  if (!ip) throw new Error(hostNetworkUnavailable() ?? 'no ip binary');
  const prefix = opts.prefix ?? uniquePrefix();
  if (!NAME.test(prefix)) throw new Error(`prefix must look like rpl-<pid>-…, got ${JSON.stringify(prefix)}`);
  const bridgeNamespace = `${prefix}br`;
  const made = hosts.map((h) => ({ name: h.name, namespace: `${prefix}${h.name}`, address: h.address }));
  const namespaces = [...made.map((h) => h.namespace), bridgeNamespace];
  let destroyed = false;
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    const errors: string[] = [];
    for (const ns of namespaces) {
      try {
        removeNamespace(ip, ns);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length > 0) throw new Error(`host network ${prefix} not fully removed:\n${errors.join('\n')}`);
  };
  for (const ns of namespaces) removeNamespace(ip, ns);
  try {
    run(ip, ['netns', 'add', bridgeNamespace]);
    run(ip, ['-n', bridgeNamespace, 'link', 'add', 'br0', 'type', 'bridge']);
    run(ip, ['-n', bridgeNamespace, 'link', 'set', 'br0', 'up']);
    for (const [i, h] of made.entries()) {
      const port = `v${i}`;
      run(ip, ['netns', 'add', h.namespace]);
      run(ip, ['-n', bridgeNamespace, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.namespace]);
      run(ip, ['-n', bridgeNamespace, 'link', 'set', port, 'master', 'br0', 'up']);
      run(ip, ['-n', h.namespace, 'addr', 'add', `${h.address}/${opts.prefixLength ?? 24}`, 'dev', 'eth0']);
      run(ip, ['-n', h.namespace, 'link', 'set', 'eth0', 'up']);
      run(ip, ['-n', h.namespace, 'link', 'set', 'lo', 'up']);
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return { prefix, hosts: made, bridgeNamespace, namespaces, ip, destroy };
}

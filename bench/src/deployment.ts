// What a benchmark measures: a deployment of Replica nodes, either started here by the
// launcher (every process's CPU and RSS read from /proc) or running elsewhere and
// reached by URL (`pnpm compare --urls`: CPU and RSS of the node processes read from
// their /metrics; brokers elsewhere are not measured).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type ClusterOptions, type ClusterTransport } from '@replica/cluster';
import { classifyProfile, monotonicUs, readProfiles, readThreads, threadDelta, type NodeRound, type ThreadCpu, type ThreadDelta } from './explain.js';
import { cpuSeconds, peakRss } from './proc.js';

/** What a run deploys: a transport, and for nats its publish mode. */
export type Variant = 'none' | 'plexus' | 'nats-per-write' | 'nats-batched';
export const VARIANTS: readonly Variant[] = ['none', 'plexus', 'nats-per-write', 'nats-batched'];

const MODE: Record<Variant, string> = { none: 'standalone', plexus: 'direct', 'nats-per-write': 'per-write', 'nats-batched': 'batched' };

/** The mode a run of `variant` reports: direct (plexus), per-write or batched (nats), standalone (none). */
export function modeOf(variant: Variant): string {
  return MODE[variant];
}

/** The cluster transport a variant runs on. */
export function transportOf(variant: Variant): ClusterTransport {
  return variant.startsWith('nats') ? 'nats' : (variant as ClusterTransport);
}

/** The variant of a run, from its transport and mode. */
export function variantOf(run: { readonly transport: string; readonly mode: string }): Variant {
  return run.transport === 'nats' ? (`nats-${run.mode}` as Variant) : run.transport === 'plexus' ? 'plexus' : 'none';
}

/** CPU seconds used so far by each process of a deployment, in node order. */
export interface CpuSnapshot {
  readonly nodes: readonly number[];
  /** Empty where the brokers cannot be measured (no broker, or not on this machine). */
  readonly brokers: readonly number[];
}

export interface Deployment {
  readonly variant: Variant;
  /** The nodes' base URLs (`http://host:port`), in node order. */
  readonly urls: readonly string[];
  /** local: started here, every process measured from /proc. remote: measured through each node's /metrics. */
  readonly source: 'local' | 'remote';
  /** The node processes' ids, where they run on this machine (local deployments). */
  readonly pids: readonly number[];
  cpu(): Promise<CpuSnapshot>;
  /** Peak resident memory so far in MiB (remote: the highest value cpu() has seen). */
  peakRssMiB(): Promise<{ readonly nodes: readonly number[]; readonly brokers: readonly number[] }>;
  /** Stops what this deployment started (nothing, for a remote one). */
  stop(): Promise<void>;
  /** Started with --explain: traces rounds for the CPU breakdown (local deployments only). */
  readonly explain?: Explainer;
}

/** Marks measured rounds on a profiled deployment; their breakdown inputs are read once it stopped. */
export interface Explainer {
  /** The round `key` starts now: reads every node thread's CPU and the clock. */
  begin(key: string): void;
  /** The round `key` ends now. */
  end(key: string): void;
  /** After stop(): per round, every node's thread CPU and classified samples. Removes the profiles: call it once, also when the rounds failed. */
  rounds(): Map<string, NodeRound[]>;
}

/** Traces rounds of the node processes `pids()`, profiled into `dir` (removed once read). */
function explainer(pids: () => readonly number[], dir: string): Explainer {
  const open = new Map<string, { fromUs: number; threads: ThreadCpu[][] }>();
  const closed = new Map<string, { fromUs: number; toUs: number; pids: readonly number[]; threads: ThreadDelta[] }>();
  return {
    begin(key) {
      open.set(key, { fromUs: monotonicUs(), threads: pids().map(readThreads) });
    },
    end(key) {
      const b = open.get(key);
      if (!b) return;
      const after = pids().map(readThreads);
      closed.set(key, { fromUs: b.fromUs, toUs: monotonicUs(), pids: pids(), threads: after.map((a, i) => threadDelta(b.threads[i] ?? [], a)) });
      open.delete(key);
    },
    rounds() {
      let profiles;
      try {
        profiles = readProfiles(dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const out = new Map<string, NodeRound[]>();
      for (const [key, r] of closed) {
        out.set(
          key,
          r.pids.map((pid, i) => {
            const p = profiles.get(pid);
            if (!p) throw new Error(`--explain: node process ${pid} wrote no CPU profile into ${dir}`);
            return { threads: r.threads[i] as ThreadDelta, samples: classifyProfile(p, r.fromUs, r.toUs) };
          }),
        );
      }
      return out;
    },
  };
}

/**
 * Starts a fresh local cluster of `variant` (fresh data directories), ready when this
 * resolves. With `explain`, every node runs under V8's sampling profiler (`--cpu-prof`).
 */
export async function startLocal(variant: Variant, nodes: number, extra?: Pick<ClusterOptions, 'env' | 'execArgv'>, explain = false): Promise<Deployment> {
  const profileDir = explain ? mkdtempSync(join(tmpdir(), 'replica-explain-')) : undefined;
  const execArgv = [...(extra?.execArgv ?? []), ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])];
  let cluster;
  try {
    cluster = await startCluster({
      nodes,
      transport: transportOf(variant),
      ...(variant === 'nats-batched' ? { natsMode: 'batched' as const } : {}),
      ...(variant === 'nats-per-write' ? { natsMode: 'per-write' as const } : {}),
      ...extra,
      ...(execArgv.length > 0 ? { execArgv } : {}),
    });
  } catch (err) {
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    throw err;
  }
  const c = cluster;
  return {
    ...(profileDir ? { explain: explainer(() => c.nodes.map((n) => n.pid), profileDir) } : {}),
    variant,
    urls: cluster.nodes.map((n) => n.url),
    source: 'local',
    get pids() {
      return cluster.nodes.map((n) => n.pid);
    },
    cpu: async () => ({ nodes: cluster.nodes.map((n) => cpuSeconds(n.pid)), brokers: cluster.natsServers.map((s) => cpuSeconds(s.pid)) }),
    peakRssMiB: async () => ({
      nodes: cluster.nodes.map((n) => Math.round(peakRss(n.pid) / 2 ** 20)),
      brokers: cluster.natsServers.map((s) => Math.round(peakRss(s.pid) / 2 ** 20)),
    }),
    stop: () => cluster.stop(),
  };
}

/** A remote deployment is not one the comparison can measure: `message` says which node and why. */
export class DeploymentError extends Error {}

interface NodeStatus {
  readonly node: string;
  readonly transport: string;
  readonly mode?: string;
}

/** The value of an unlabelled metric in a Prometheus text exposition, or undefined. */
export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * A deployment this process did not start: reads every node's transport and mode from
 * `/status` (they must agree, and be a replicating transport unless there is one node),
 * and measures the node processes through `/metrics` (`process_cpu_seconds_total`,
 * `process_resident_memory_bytes`). Throws a {@link DeploymentError} naming the node
 * that is unreachable, not ready, or disagrees.
 */
export async function connectRemote(urls: readonly string[], timeoutMs = 30_000): Promise<Deployment> {
  const base = urls.map((u) => u.replace(/\/+$/, ''));
  const statuses: NodeStatus[] = [];
  for (const url of base) {
    let res: Response;
    try {
      res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new DeploymentError(`${url}: unreachable (${(err as Error).message})`);
    }
    if (!res.ok) throw new DeploymentError(`${url}/status answered ${res.status}`);
    statuses.push((await res.json()) as NodeStatus);
  }
  const kinds = new Set(statuses.map((s) => `${s.transport}/${s.mode ?? '?'}`));
  if (kinds.size !== 1) throw new DeploymentError(`the nodes of one deployment run different transports or modes: ${base.map((u, i) => `${u} ${statuses[i]?.transport}/${statuses[i]?.mode ?? '?'}`).join(', ')}`);
  const first = statuses[0] as NodeStatus;
  if (first.transport === 'nats' && first.mode !== 'per-write' && first.mode !== 'batched') throw new DeploymentError(`${base[0]}: a nats node that does not report its publish mode in /status (a Replica older than this bench?)`);
  if (!['plexus', 'nats', 'none'].includes(first.transport)) throw new DeploymentError(`${base[0]}: unknown transport "${first.transport}"`);
  if (first.transport === 'none' && base.length > 1) throw new DeploymentError('nodes without replication (REPLICATION_TRANSPORT=none) do not form a cluster');
  if (new Set(statuses.map((s) => s.node)).size !== statuses.length) throw new DeploymentError(`two URLs reach the same node: ${statuses.map((s) => s.node).join(', ')}`);
  const deadline = Date.now() + timeoutMs;
  for (const url of base) {
    for (;;) {
      const res = await fetch(`${url}/ready`).catch(() => undefined);
      if (res?.ok) break;
      if (Date.now() > deadline) throw new DeploymentError(`${url}/ready did not answer 200 within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const variant = variantOf({ transport: first.transport, mode: first.mode ?? '' });
  const peak = base.map(() => 0);
  const scrape = async (): Promise<{ cpu: number[]; rss: number[] }> => {
    const texts = await Promise.all(base.map(async (u) => (await fetch(`${u}/metrics`, { signal: AbortSignal.timeout(timeoutMs) })).text()));
    return { cpu: texts.map((t) => metricValue(t, 'process_cpu_seconds_total') ?? Number.NaN), rss: texts.map((t) => metricValue(t, 'process_resident_memory_bytes') ?? 0) };
  };
  return {
    variant,
    urls: base,
    source: 'remote',
    pids: [],
    cpu: async () => {
      const s = await scrape();
      s.rss.forEach((v, i) => (peak[i] = Math.max(peak[i] as number, v)));
      return { nodes: s.cpu, brokers: [] };
    },
    // what cpu() saw: a round reads the CPU at its end, just before it asks for this
    peakRssMiB: async () => ({ nodes: peak.map((b) => Math.round(b / 2 ** 20)), brokers: [] }),
    stop: async () => {},
  };
}

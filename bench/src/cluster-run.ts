// One measured run of the published workload against a fresh cluster: the shared core of
// `pnpm compare` and `pnpm bench:replication`.
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster, type ClusterOptions, type ClusterTransport } from '@replica/cluster';
import type { LoadJob, LoadResult } from './loadgen.js';
import { cpuSeconds, peakRss, runJson } from './proc.js';
import type { IdMode } from './records.js';

const LOADGEN = fileURLToPath(new URL('./loadgen.js', import.meta.url));

/** What a run deploys: a transport, and for nats its publish mode. */
export type Variant = 'none' | 'plexus' | 'nats-per-write' | 'nats-batched';
export const VARIANTS: readonly Variant[] = ['none', 'plexus', 'nats-per-write', 'nats-batched'];

export interface RunOptions {
  readonly variant: Variant;
  readonly nodes: number;
  readonly ids: IdMode;
  /** Records the measured phase writes (every one a fresh id, POSTed once). */
  readonly records: number;
  /** Records written (and replicated) before measuring, to warm caches and JITs up. */
  readonly warmup: number;
  readonly connections: number;
  /** Unique per run, so sequential ids of different runs never collide. */
  readonly tag: string;
  /** How long the measured phase plus replication may take before the run fails. Default 10 min. */
  readonly timeoutMs?: number;
  /** Called about once a second while the measured phase runs. */
  readonly onProgress?: (p: Progress) => void;
  /** Launcher options on top of the variant's (node runtime flags, extra environment). */
  readonly cluster?: Pick<ClusterOptions, 'env' | 'execArgv'>;
}

export interface Progress {
  readonly phase: 'starting' | 'warmup' | 'load' | 'replicating';
  readonly elapsedSec: number;
  /** Records held by the node that holds the most (≈ accepted so far). */
  readonly most: number;
  /** Records held by every node. */
  readonly everywhere: number;
}

export interface Run {
  readonly transport: ClusterTransport;
  /** direct (plexus), per-write or batched (nats), standalone (none). */
  readonly mode: string;
  readonly nodes: number;
  readonly ids: IdMode;
  readonly records: number;
  readonly acceptedPerSec: number;
  /** Records ÷ seconds from the first request until every node held every record with one digest. */
  readonly replicatedPerSec: number;
  readonly postP50Ms: number;
  readonly postP99Ms: number;
  readonly lagP50Ms: number;
  readonly lagP99Ms: number;
  /** Entries per plexus frame, or per nats message. */
  readonly entriesPerFrame: number;
  readonly cpuSecPer1kWrites: { readonly nodes: number; readonly brokers: number; readonly loadgen: number };
  /** CPU seconds of each process during the measured phase. */
  readonly cpuSec: { readonly nodes: readonly number[]; readonly brokers: readonly number[]; readonly loadgen: number };
  readonly peakRssMiB: { readonly nodes: readonly number[]; readonly brokers: readonly number[] };
  /** Non-2xx responses plus connection errors the load generator saw. */
  readonly errors: number;
  /** Every node ended with exactly the acknowledged records of the table and one digest. */
  readonly verified: boolean;
  readonly digest: string;
  readonly seconds: number;
}

interface Status {
  tables: Record<string, { count: number; digest: string }>;
  replication: { peers: { counters: Record<string, number> }[]; counters?: Record<string, number> };
}

interface Scrape {
  lag: number[];
  bucketsMs: number[];
  entriesSent: number;
  batchesSent: number;
  cpu: number[];
  brokerCpu: number[];
}

async function getStatus(url: string): Promise<Status> {
  const res = await fetch(`${url}/status`);
  if (!res.ok) throw new Error(`${url}/status answered ${res.status}`);
  return (await res.json()) as Status;
}

async function scrape(cluster: Cluster): Promise<Scrape> {
  const lag: number[] = [];
  const bucketsMs: number[] = [];
  let entriesSent = 0;
  let batchesSent = 0;
  for (const n of cluster.nodes) {
    const text = await (await fetch(`${n.url}/metrics`)).text();
    let i = 0;
    for (const m of text.matchAll(/^replica_replication_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
      if (m[1] !== '+Inf') bucketsMs[i] = Number(m[1]) * 1000;
      lag[i] = (lag[i] ?? 0) + Number(m[2]);
      i++;
    }
    const rep = (await getStatus(n.url)).replication;
    for (const p of rep.peers) {
      entriesSent += p.counters['entriesSent'] ?? 0;
      batchesSent += p.counters['batchesSent'] ?? 0;
    }
    // nats: entries and messages published to the broker
    entriesSent += rep.counters?.['published'] ?? 0;
    batchesSent += rep.counters?.['messagesPublished'] ?? 0;
  }
  return {
    lag,
    bucketsMs,
    entriesSent,
    batchesSent,
    cpu: cluster.nodes.map((n) => cpuSeconds(n.pid)),
    brokerCpu: cluster.natsServers.map((s) => cpuSeconds(s.pid)),
  };
}

/** Percentile of a cumulative-bucket histogram, interpolated inside the bucket. */
export function histogramPercentile(cumulative: readonly number[], bucketsMs: readonly number[], p: number): number {
  const total = cumulative.at(-1) ?? 0;
  if (total === 0) return 0;
  const target = (p / 100) * total;
  for (let i = 0; i < cumulative.length; i++) {
    if ((cumulative[i] as number) >= target) {
      const lo = i === 0 ? 0 : (bucketsMs[i - 1] as number);
      const hi = bucketsMs[i] ?? lo * 2;
      const below = i === 0 ? 0 : (cumulative[i - 1] as number);
      const inBucket = (cumulative[i] as number) - below;
      return Math.round((lo + ((hi - lo) * (target - below)) / Math.max(1, inBucket)) * 10) / 10;
    }
  }
  return bucketsMs.at(-1) ?? 0;
}

/** Counts of `table` on every node. */
async function counts(cluster: Cluster, table: string): Promise<{ counts: number[]; digests: (string | undefined)[] }> {
  const s = await Promise.all(cluster.nodes.map((n) => getStatus(n.url)));
  return { counts: s.map((x) => x.tables[table]?.count ?? 0), digests: s.map((x) => x.tables[table]?.digest) };
}

/**
 * Waits until every node holds at least `count` records of `table` with one digest.
 * Returns when that was first seen (ms), and whether every node holds exactly `count`.
 */
async function waitReplicated(cluster: Cluster, table: string, count: number, timeoutMs: number, tick?: () => void): Promise<{ at: number; digest: string; exact: boolean }> {
  const deadline = Date.now() + timeoutMs;
  let lastTick = 0;
  for (;;) {
    const { counts: c, digests } = await counts(cluster, table);
    const at = Date.now();
    if (c.every((x) => x >= count) && new Set(digests).size === 1) {
      return { at, digest: digests[0] ?? '', exact: c.every((x) => x === count) };
    }
    if (at > deadline) throw new Error(`not replicated within ${timeoutMs} ms: counts ${c.join(', ')}, want ${count}; digests ${[...new Set(digests)].join(', ')}`);
    if (tick && at - lastTick >= 1000) {
      lastTick = at;
      tick();
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

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
export function variantOf(run: Pick<Run, 'transport' | 'mode'>): Variant {
  return run.transport === 'nats' ? (`nats-${run.mode}` as Variant) : run.transport === 'plexus' ? 'plexus' : 'none';
}

/** A run that threw before it measured anything: its place in the report, with the reason. */
export interface FailedRun {
  readonly transport: ClusterTransport;
  readonly mode: string;
  readonly nodes: number;
  readonly ids: IdMode;
  readonly records: 0;
  readonly acceptedPerSec: 0;
  readonly replicatedPerSec: 0;
  readonly errors: number;
  readonly verified: false;
  readonly failure: string;
}

export type Outcome = Run | FailedRun;

export const isRun = (o: Outcome): o is Run => !('failure' in o);

/** The outcome of a run of `variant` that failed with `err`: no figures, one error, not verified. */
export function failedRun(o: Pick<RunOptions, 'variant' | 'nodes' | 'ids'>, err: unknown): FailedRun {
  const failure = err instanceof Error ? err.message : String(err);
  return { transport: transportOf(o.variant), mode: modeOf(o.variant), nodes: o.nodes, ids: o.ids, records: 0, acceptedPerSec: 0, replicatedPerSec: 0, errors: 1, verified: false, failure };
}

/**
 * Starts a fresh cluster (fresh data directories), warms it up, runs the measured
 * load, waits until every node holds every record, measures, and stops the cluster —
 * also when anything fails.
 */
export async function runCluster(o: RunOptions): Promise<Run> {
  const started = Date.now();
  const report = (phase: Progress['phase'], most = 0, everywhere = 0) => o.onProgress?.({ phase, elapsedSec: (Date.now() - started) / 1000, most, everywhere });
  report('starting');
  const cluster = await startCluster({
    nodes: o.nodes,
    transport: transportOf(o.variant),
    ...(o.variant === 'nats-batched' ? { natsMode: 'batched' as const } : {}),
    ...(o.variant === 'nats-per-write' ? { natsMode: 'per-write' as const } : {}),
    ...o.cluster,
  });
  const timeoutMs = o.timeoutMs ?? 600_000;
  let poller: NodeJS.Timeout | undefined;
  try {
    const urls = cluster.nodes.map((n) => n.url);
    const job = (table: string, max: number, prefix: string): LoadJob => ({
      urls,
      connections: o.connections,
      durationSec: timeoutMs / 1000,
      maxRequests: max,
      ids: o.ids,
      table,
      idPrefix: prefix,
    });
    if (o.warmup > 0) {
      report('warmup');
      const warm = await runJson<LoadResult>(LOADGEN, job('warmup', o.warmup, `w${o.tag}`), timeoutMs);
      if (warm.ok === 0) throw new Error(`warm-up: no write succeeded (${JSON.stringify(warm.statusCounts)}, ${warm.errors} errors)`);
      await waitReplicated(cluster, 'warmup', warm.ok, 120_000);
    }
    const before = await scrape(cluster);
    const poll = async () => {
      try {
        const { counts: c } = await counts(cluster, 'bench');
        report('load', Math.max(...c), Math.min(...c));
      } catch {
        // progress is best effort
      }
    };
    poller = setInterval(() => void poll(), 1000);
    const r = await runJson<LoadResult>(LOADGEN, job('bench', o.records, `m${o.tag}`), timeoutMs);
    clearInterval(poller);
    poller = undefined;
    const done = await waitReplicated(cluster, 'bench', r.ok, Math.max(60_000, timeoutMs - (Date.now() - r.firstMs)), () => void counts(cluster, 'bench').then(({ counts: c }) => report('replicating', Math.max(...c), Math.min(...c)), () => {}));
    const after = await scrape(cluster);
    const bucketsMs = after.bucketsMs;
    const lag = after.lag.map((v, i) => v - (before.lag[i] ?? 0));
    const nodeCpu = after.cpu.map((v, i) => Number((v - (before.cpu[i] ?? 0)).toFixed(2)));
    const brokerCpu = after.brokerCpu.map((v, i) => Number((v - (before.brokerCpu[i] ?? 0)).toFixed(2)));
    const sum = (xs: readonly number[]) => xs.reduce((s, v) => s + v, 0);
    const per1k = (sec: number) => (r.ok > 0 ? Number(((sec * 1000) / r.ok).toFixed(4)) : 0);
    const batches = after.batchesSent - before.batchesSent;
    const errors = r.non2xx + r.errors;
    return {
      transport: transportOf(o.variant),
      mode: modeOf(o.variant),
      nodes: o.nodes,
      ids: o.ids,
      records: r.ok,
      acceptedPerSec: Math.round(r.perSec),
      replicatedPerSec: Math.round(r.ok / ((done.at - r.firstMs) / 1000)),
      postP50Ms: r.p50,
      postP99Ms: r.p99,
      lagP50Ms: histogramPercentile(lag, bucketsMs, 50),
      lagP99Ms: histogramPercentile(lag, bucketsMs, 99),
      entriesPerFrame: batches > 0 ? Math.round(((after.entriesSent - before.entriesSent) / batches) * 10) / 10 : 0,
      cpuSecPer1kWrites: { nodes: per1k(sum(nodeCpu)), brokers: per1k(sum(brokerCpu)), loadgen: per1k(r.cpuSec) },
      cpuSec: { nodes: nodeCpu, brokers: brokerCpu, loadgen: Number(r.cpuSec.toFixed(2)) },
      peakRssMiB: {
        nodes: cluster.nodes.map((n) => Math.round(peakRss(n.pid) / 2 ** 20)),
        brokers: cluster.natsServers.map((s) => Math.round(peakRss(s.pid) / 2 ** 20)),
      },
      errors,
      verified: done.exact && errors === 0 && r.ok === o.records,
      digest: done.digest,
      seconds: Number(((done.at - r.firstMs) / 1000).toFixed(2)),
    };
  } finally {
    if (poller) clearInterval(poller);
    await cluster.stop();
  }
}

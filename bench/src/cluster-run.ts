// One measured round of the published workload against a deployment: the shared core of
// `pnpm compare` and `pnpm bench:replication`. A deployment is started here or reached by
// URL (./deployment.ts); a round writes fresh records into its own table, waits until
// every node holds every one of them with one digest, and measures.
import { fileURLToPath } from 'node:url';
import type { ClusterOptions, ClusterTransport } from '@replica/cluster';
import { modeOf, startLocal, transportOf, type Deployment, type Variant } from './deployment.js';
import type { Breakdown } from './explain.js';
import type { LoadJob, LoadResult } from './loadgen.js';
import { runJson } from './proc.js';
import type { IdMode } from './records.js';

export { modeOf, transportOf, variantOf, VARIANTS, type Variant } from './deployment.js';

const LOADGEN = fileURLToPath(new URL('./loadgen.js', import.meta.url));

/** What one measured round writes. */
export interface RoundOptions {
  readonly ids: IdMode;
  /** Records the round writes (every one a fresh id, POSTed once). */
  readonly records: number;
  readonly connections: number;
  /** The table the round writes to: a fresh one per round. */
  readonly table: string;
  /** Unique per round of a deployment, so sequential ids of different rounds never collide. */
  readonly tag: string;
  /** How long the load plus replication may take before the round fails. Default 10 min. */
  readonly timeoutMs?: number;
  /** Called about once a second while the round runs. */
  readonly onProgress?: (p: Progress) => void;
  /** --explain: also measure each node's threads and fetch its CPU profile of the round. */
  readonly explain?: boolean;
}

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
  /** CPU seconds of each process during the measured phase (brokers: [] where not measured). */
  readonly cpuSec: { readonly nodes: readonly number[]; readonly brokers: readonly number[]; readonly loadgen: number };
  readonly peakRssMiB: { readonly nodes: readonly number[]; readonly brokers: readonly number[] };
  /** Non-2xx responses plus connection errors the load generator saw. */
  readonly errors: number;
  /** Every node ended with exactly the acknowledged records of the table and one digest. */
  readonly verified: boolean;
  readonly digest: string;
  readonly seconds: number;
  /** --explain: the CPU per write by component (see explain.ts). */
  readonly breakdown?: Breakdown;
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
}

async function getStatus(url: string): Promise<Status> {
  const res = await fetch(`${url}/status`);
  if (!res.ok) throw new Error(`${url}/status answered ${res.status}`);
  return (await res.json()) as Status;
}

async function scrape(urls: readonly string[]): Promise<Scrape> {
  const lag: number[] = [];
  const bucketsMs: number[] = [];
  let entriesSent = 0;
  let batchesSent = 0;
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    let i = 0;
    for (const m of text.matchAll(/^replica_replication_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
      if (m[1] !== '+Inf') bucketsMs[i] = Number(m[1]) * 1000;
      lag[i] = (lag[i] ?? 0) + Number(m[2]);
      i++;
    }
    const rep = (await getStatus(url)).replication;
    for (const p of rep.peers) {
      entriesSent += p.counters['entriesSent'] ?? 0;
      batchesSent += p.counters['batchesSent'] ?? 0;
    }
    // nats: entries and messages published to the broker
    entriesSent += rep.counters?.['published'] ?? 0;
    batchesSent += rep.counters?.['messagesPublished'] ?? 0;
  }
  return { lag, bucketsMs, entriesSent, batchesSent };
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

/** Counts of `table` on every node, and what each node's store refuses (its storage state, where not writable). */
async function counts(urls: readonly string[], table: string): Promise<{ counts: number[]; digests: (string | undefined)[]; refusing: string[] }> {
  const s = await Promise.all(urls.map((u) => getStatus(u)));
  const refusing = s.flatMap((x, i) => {
    const storage = (x as { storage?: { state: string; reason?: string } }).storage;
    return storage && storage.state !== 'writable' ? [`${urls[i]} storage ${storage.state}: ${storage.reason ?? ''}`] : [];
  });
  return { counts: s.map((x) => x.tables[table]?.count ?? 0), digests: s.map((x) => x.tables[table]?.digest), refusing };
}

/**
 * Waits until every node holds at least `count` records of `table` with one digest.
 * Returns when that was first seen (ms), and whether every node holds exactly `count`.
 */
async function waitReplicated(urls: readonly string[], table: string, count: number, timeoutMs: number, tick?: () => void): Promise<{ at: number; digest: string; exact: boolean }> {
  const deadline = Date.now() + timeoutMs;
  let lastTick = 0;
  for (;;) {
    const { counts: c, digests, refusing } = await counts(urls, table);
    const at = Date.now();
    if (c.every((x) => x >= count) && new Set(digests).size === 1) {
      return { at, digest: digests[0] ?? '', exact: c.every((x) => x === count) };
    }
    if (at > deadline) throw new Error(`not replicated within ${timeoutMs} ms: counts ${c.join(', ')}, want ${count}; digests ${[...new Set(digests)].join(', ')}${refusing.map((r) => `; ${r}`).join('')}`);
    if (tick && at - lastTick >= 1000) {
      lastTick = at;
      tick();
    }
    await new Promise((r) => setTimeout(r, 25));
  }
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

/** Writes `records` records (of a table of their own) through every node of `dep`, and waits until every node holds them. */
export async function warmUp(dep: Deployment, o: { readonly records: number; readonly connections: number; readonly ids: IdMode; readonly tag: string; readonly timeoutMs?: number }): Promise<void> {
  if (o.records <= 0) return;
  const timeoutMs = o.timeoutMs ?? 600_000;
  const table = `warmup${o.tag}`;
  const job: LoadJob = { urls: dep.urls, connections: o.connections, durationSec: timeoutMs / 1000, maxRequests: o.records, ids: o.ids, table, idPrefix: `w${o.tag}` };
  const warm = await runJson<LoadResult>(LOADGEN, job, timeoutMs);
  if (warm.ok === 0) throw new Error(`warm-up: no write succeeded (${JSON.stringify(warm.statusCounts)}, ${warm.errors} errors)`);
  await waitReplicated(dep.urls, table, warm.ok, 120_000);
}

/**
 * One measured round on a running deployment: the load writes `records` fresh records to
 * `table` through every node; the round ends when every node holds every acknowledged
 * record with one digest. CPU is the deployment's processes' from just before the load
 * to that moment.
 */
export async function measureRound(dep: Deployment, o: RoundOptions): Promise<Run> {
  const started = Date.now();
  const report = (phase: Progress['phase'], most = 0, everywhere = 0) => o.onProgress?.({ phase, elapsedSec: (Date.now() - started) / 1000, most, everywhere });
  const timeoutMs = o.timeoutMs ?? 600_000;
  const urls = dep.urls;
  const job: LoadJob = { urls, connections: o.connections, durationSec: timeoutMs / 1000, maxRequests: o.records, ids: o.ids, table: o.table, idPrefix: `m${o.tag}` };
  const before = await scrape(urls);
  const cpuBefore = await dep.cpu();
  if (o.explain) dep.explain?.begin(o.table);
  const poll = async () => {
    try {
      const { counts: c } = await counts(urls, o.table);
      report('load', Math.max(...c), Math.min(...c));
    } catch {
      // progress is best effort
    }
  };
  const poller = setInterval(() => void poll(), 1000);
  let r: LoadResult;
  try {
    r = await runJson<LoadResult>(LOADGEN, job, timeoutMs);
  } finally {
    clearInterval(poller);
  }
  const tick = () => void counts(urls, o.table).then(({ counts: c }) => report('replicating', Math.max(...c), Math.min(...c)), () => {});
  const done = await waitReplicated(urls, o.table, r.ok, Math.max(60_000, timeoutMs - (Date.now() - r.firstMs)), tick);
  const cpuAfter = await dep.cpu();
  if (o.explain) dep.explain?.end(o.table);
  const after = await scrape(urls);
  const bucketsMs = after.bucketsMs;
  const lag = after.lag.map((v, i) => v - (before.lag[i] ?? 0));
  const nodeCpu = cpuAfter.nodes.map((v, i) => Number((v - (cpuBefore.nodes[i] ?? 0)).toFixed(2)));
  const brokerCpu = cpuAfter.brokers.map((v, i) => Number((v - (cpuBefore.brokers[i] ?? 0)).toFixed(2)));
  const sum = (xs: readonly number[]) => xs.reduce((s, v) => s + v, 0);
  const per1k = (sec: number) => (r.ok > 0 ? Number(((sec * 1000) / r.ok).toFixed(4)) : 0);
  const batches = after.batchesSent - before.batchesSent;
  const errors = r.non2xx + r.errors;
  return {
    transport: transportOf(dep.variant),
    mode: modeOf(dep.variant),
    nodes: urls.length,
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
    peakRssMiB: await dep.peakRssMiB(),
    errors,
    verified: done.exact && errors === 0 && r.ok === o.records,
    digest: done.digest,
    seconds: Number(((done.at - r.firstMs) / 1000).toFixed(2)),
  };
}

/**
 * Starts a fresh local cluster (fresh data directories), warms it up, runs one measured
 * round, and stops the cluster — also when anything fails.
 */
export async function runCluster(o: RunOptions): Promise<Run> {
  const started = Date.now();
  o.onProgress?.({ phase: 'starting', elapsedSec: 0, most: 0, everywhere: 0 });
  const dep = await startLocal(o.variant, o.nodes, o.cluster);
  try {
    if (o.warmup > 0) {
      o.onProgress?.({ phase: 'warmup', elapsedSec: (Date.now() - started) / 1000, most: 0, everywhere: 0 });
      await warmUp(dep, { records: o.warmup, connections: o.connections, ids: o.ids, tag: o.tag, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) });
    }
    return await measureRound(dep, { ids: o.ids, records: o.records, connections: o.connections, table: 'bench', tag: o.tag, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  } finally {
    await dep.stop();
  }
}

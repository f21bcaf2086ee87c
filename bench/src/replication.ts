// Replicated-write benchmark: real clusters of Replica processes on this machine, the
// published workload (500 connections spread over the nodes POSTing fresh 400-byte,
// 8-field records), and the time until every node holds every record.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCluster, type Cluster, type ClusterTransport } from '@replica/cluster';
import { machineInfo } from './env-info.js';
import type { LoadJob, LoadResult } from './loadgen.js';
import { cpuSeconds, peakRss, runJson } from './proc.js';
import type { IdMode } from './records.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const LOADGEN = here('./loadgen.js');

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3,4' },
    transports: { type: 'string', default: 'plexus,nats-per-write,nats-batched' },
    ids: { type: 'string', default: 'random,sequential' },
    records: { type: 'string', default: '60000' },
    warmup: { type: 'string', default: '5000' },
    connections: { type: 'string', default: '500' },
    baseline: { type: 'string', default: 'yes' },
    out: { type: 'string', default: here('../results') },
  },
});
const nodeCounts = (args.nodes as string).split(',').map(Number);
type Variant = 'none' | 'plexus' | 'nats-per-write' | 'nats-batched';
const transports = (args.transports as string).split(',') as Variant[];
for (const t of transports) if (!['plexus', 'nats-per-write', 'nats-batched', 'none'].includes(t)) throw new Error(`--transports: unknown ${t}`);
const idModes = (args.ids as string).split(',') as IdMode[];
const records = Number(args.records);
const warmupRecords = Number(args.warmup);
const connections = Number(args.connections);

interface Status {
  tables: Record<string, { count: number; digest: string }>;
  replication: { peers: { counters: Record<string, number> }[]; counters?: Record<string, number> };
}
interface Scrape {
  lag: number[];
  entriesSent: number;
  batchesSent: number;
  cpu: number[];
  brokerCpu: number[];
}

const getStatus = async (url: string) => (await (await fetch(`${url}/status`)).json()) as Status;

async function scrape(cluster: Cluster): Promise<Scrape> {
  const lag: number[] = [];
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
  return { lag, entriesSent, batchesSent, cpu: cluster.nodes.map((n) => cpuSeconds(n.pid)), brokerCpu: cluster.natsServers.map((s) => cpuSeconds(s.pid)) };
}

/** Upper bounds of the nodes' lag histogram buckets, as their /metrics state them. */
const bucketsMs: number[] = [];

/** Percentile of a cumulative-bucket histogram, interpolated inside the bucket. */
function percentile(cumulative: number[], p: number): number {
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
  return bucketsMs.at(-1) as number;
}

/** Waits until every node holds `count` records in `table` with one digest; returns when (ms). */
async function waitReplicated(cluster: Cluster, table: string, count: number, timeoutMs: number): Promise<{ at: number; digest: string; exact: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await Promise.all(cluster.nodes.map((n) => getStatus(n.url)));
    const at = Date.now();
    const t = s.map((x) => x.tables[table]);
    if (t.every((x) => x && x.count >= count) && new Set(t.map((x) => x?.digest)).size === 1) {
      return { at, digest: t[0]?.digest ?? '', exact: t.every((x) => x?.count === count) };
    }
    if (at > deadline) throw new Error(`not replicated within ${timeoutMs} ms: ${JSON.stringify(t)} (want ${count})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Run {
  transport: string;
  mode: string;
  nodes: number;
  ids: IdMode;
  records: number;
  acceptedPerSec: number;
  replicatedPerSec: number;
  postP50Ms: number;
  postP99Ms: number;
  lagP50Ms: number;
  lagP99Ms: number;
  entriesPerFrame: number;
  cpuSecPer1kWrites: number;
  brokerCpuSecPer1kWrites: number;
  peakRssMiB: number[];
  brokerPeakRssMiB: number[];
  loadgenCpuSec: number;
  errors: number;
  verified: boolean;
}

async function runOne(variant: Variant, nodes: number, ids: IdMode, index: number): Promise<Run> {
  const transport: ClusterTransport = variant.startsWith('nats') ? 'nats' : (variant as ClusterTransport);
  const cluster = await startCluster({ nodes, transport, ...(variant === 'nats-batched' ? { natsMode: 'batched' as const } : {}) });
  try {
    const urls = cluster.nodes.map((n) => n.url);
    const job = (table: string, max: number, prefix: string): LoadJob => ({ urls, connections, durationSec: 600, maxRequests: max, ids, table, idPrefix: prefix });
    const warm = await runJson<LoadResult>(LOADGEN, job('warmup', warmupRecords, `w${index}`), 120_000);
    await waitReplicated(cluster, 'warmup', warm.ok, 60_000);
    const before = await scrape(cluster);
    const r = await runJson<LoadResult>(LOADGEN, job('bench', records, `m${index}`), 600_000);
    const done = await waitReplicated(cluster, 'bench', r.ok, 120_000);
    const after = await scrape(cluster);
    const lag = after.lag.map((v, i) => v - (before.lag[i] ?? 0));
    const cpu = after.cpu.reduce((s, v, i) => s + v - (before.cpu[i] ?? 0), 0);
    const brokerCpu = after.brokerCpu.reduce((s, v, i) => s + v - (before.brokerCpu[i] ?? 0), 0);
    const batches = after.batchesSent - before.batchesSent;
    return {
      transport,
      mode: variant === 'plexus' ? 'direct' : variant === 'none' ? 'standalone' : variant.slice(5),
      nodes,
      ids,
      records: r.ok,
      acceptedPerSec: Math.round(r.perSec),
      replicatedPerSec: Math.round(r.ok / ((done.at - r.firstMs) / 1000)),
      postP50Ms: r.p50,
      postP99Ms: r.p99,
      lagP50Ms: percentile(lag, 50),
      lagP99Ms: percentile(lag, 99),
      entriesPerFrame: batches > 0 ? Math.round(((after.entriesSent - before.entriesSent) / batches) * 10) / 10 : 0,
      cpuSecPer1kWrites: Number(((cpu * 1000) / r.ok).toFixed(4)),
      brokerCpuSecPer1kWrites: Number(((brokerCpu * 1000) / r.ok).toFixed(4)),
      peakRssMiB: cluster.nodes.map((n) => Math.round(peakRss(n.pid) / 2 ** 20)),
      brokerPeakRssMiB: cluster.natsServers.map((s) => Math.round(peakRss(s.pid) / 2 ** 20)),
      loadgenCpuSec: Number(r.cpuSec.toFixed(2)),
      errors: r.non2xx + r.errors,
      // every node holds exactly the acknowledged records, with one digest
      verified: done.exact && r.non2xx + r.errors === 0,
    };
  } finally {
    await cluster.stop();
  }
}

const runs: Run[] = [];
let index = 0;
const plan: [Variant, number][] = [];
if (args.baseline !== 'no') plan.push(['none', 1]);
for (const n of nodeCounts) for (const t of transports) plan.push([t, n]);
for (const ids of idModes) {
  for (const [t, n] of plan) {
    process.stderr.write(`${t} × ${n} node(s), ${ids} ids, ${records} records over ${connections} connections… `);
    const run = await runOne(t, n, ids, index++);
    runs.push(run);
    process.stderr.write(`accepted ${run.acceptedPerSec}/s, replicated ${run.replicatedPerSec}/s, lag p99 ${run.lagP99Ms} ms, errors ${run.errors}\n`);
  }
}

const info = machineInfo();
const result = { benchmark: 'replication', ...info, connections, records, warmupRecords, runs };
const table = [
  '| transport | mode | nodes | ids | accepted/s | replicated/s | POST p50/p99 ms | lag p50/p99 ms | entries/frame or message | CPU s / 1k writes: nodes + brokers | peak RSS MiB: nodes; brokers | errors | verified |',
  '|---|---|---:|---|---:|---:|---|---|---:|---|---|---:|---|',
  ...runs.map(
    (r) =>
      `| ${r.transport} | ${r.mode} | ${r.nodes} | ${r.ids} | ${r.acceptedPerSec} | ${r.replicatedPerSec} | ${r.postP50Ms} / ${r.postP99Ms} | ${r.lagP50Ms} / ${r.lagP99Ms} | ${r.entriesPerFrame} | ${r.cpuSecPer1kWrites} + ${r.brokerCpuSecPer1kWrites} | ${r.peakRssMiB.join(', ')}${r.brokerPeakRssMiB.length ? `; ${r.brokerPeakRssMiB.join(', ')}` : ''} | ${r.errors} | ${r.verified ? 'yes' : 'NO'} |`,
  ),
].join('\n');
const header = `Replication — ${info['date']}, sha ${info['sha']}, ${info['cpu']} (${info['cores']} cores), Node ${info['node']}, ${connections} connections, ${records} records per run`;
mkdirSync(args.out as string, { recursive: true });
const stamp = String(info['date']).replace(/[:.]/g, '-');
writeFileSync(join(args.out as string, `replication-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(args.out as string, `replication-${stamp}.md`), `${header}\n\n${table}\n`);
process.stdout.write(`\n${header}\n\n${table}\n\n${JSON.stringify(result)}\n`);
if (runs.some((r) => r.errors > 0 || !r.verified)) process.exitCode = 1;

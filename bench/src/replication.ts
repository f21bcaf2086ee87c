// Replicated-write benchmark: real clusters of Replica processes on this machine, the
// published workload (500 connections spread over the nodes POSTing fresh 400-byte,
// 8-field records), and the time until every node holds every record. One run per
// configuration, with a single-node baseline; `pnpm compare` repeats and compares.
import { fileURLToPath } from 'node:url';
import { parseCli, usageError } from '@replica/transport-api/cli';
import { runCluster, VARIANTS, type Run, type Variant } from './cluster-run.js';
import { machineInfo, machineLine } from './env-info.js';
import type { IdMode } from './records.js';
import { resultsBase, writeResults } from './results-files.js';
import { runTable } from './run-table.js';

const USAGE = `usage: pnpm bench:replication [--nodes 3,4] [--transports plexus,nats-per-write,nats-batched]
                              [--ids random,sequential] [--records 60000] [--warmup 5000]
                              [--connections 500] [--baseline yes|no] [--out DIR]
The full replication matrix (pnpm compare runs the same with its own defaults).`;
const { values: args } = parseCli<Record<'nodes' | 'transports' | 'ids' | 'records' | 'warmup' | 'connections' | 'baseline' | 'out', string>>({
  name: 'bench:replication',
  usage: USAGE,
  packageJson: new URL('../package.json', import.meta.url),
  options: {
    nodes: { type: 'string', default: '3,4' },
    transports: { type: 'string', default: 'plexus,nats-per-write,nats-batched' },
    ids: { type: 'string', default: 'random,sequential' },
    records: { type: 'string', default: '60000' },
    warmup: { type: 'string', default: '5000' },
    connections: { type: 'string', default: '500' },
    baseline: { type: 'string', default: 'yes' },
    out: { type: 'string', default: fileURLToPath(new URL('../results', import.meta.url)) },
  },
});
const nodeCounts = args.nodes.split(',').map(Number);
const transports = args.transports.split(',') as Variant[];
for (const t of transports) if (!VARIANTS.includes(t)) usageError({ name: 'bench:replication', usage: USAGE }, `--transports: unknown ${t} (one of ${VARIANTS.join(', ')})`);
const idModes = args.ids.split(',') as IdMode[];
const records = Number(args.records);
const warmup = Number(args.warmup);
const connections = Number(args.connections);

const runs: Run[] = [];
const plan: [Variant, number][] = [];
if (args.baseline !== 'no') plan.push(['none', 1]);
for (const n of nodeCounts) for (const t of transports) plan.push([t, n]);
let index = 0;
for (const ids of idModes) {
  for (const [variant, nodes] of plan) {
    process.stderr.write(`${variant} × ${nodes} node(s), ${ids} ids, ${records} records over ${connections} connections… `);
    const run = await runCluster({ variant, nodes, ids, records, warmup, connections, tag: String(index++) });
    runs.push(run);
    process.stderr.write(`accepted ${run.acceptedPerSec}/s, replicated ${run.replicatedPerSec}/s, lag p99 ${run.lagP99Ms} ms, errors ${run.errors}\n`);
  }
}

const info = machineInfo();
const result = { benchmark: 'replication', ...info, connections, records, warmupRecords: warmup, runs };
const table = runTable(runs, { round: false });
const header = `Replication — ${machineLine(info)}, ${connections} connections, ${records} records per run`;
writeResults(resultsBase(args.out, 'replication', info), { json: `${JSON.stringify(result, null, 2)}\n`, md: `${header}\n\n${table}\n` });
process.stdout.write(`\n${header}\n\n${table}\n\n${JSON.stringify(result)}\n`);
if (runs.some((r) => r.errors > 0 || !r.verified)) process.exitCode = 1;

// Single-node ingest benchmark: 500 connections POSTing 400-byte, 8-field records to
// one Replica node, side by side with a bare fastify route (the HTTP ceiling here).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCli, usageError } from '@replica/transport-api/cli';
import { machineInfo, machineLine } from './env-info.js';
import type { LoadJob, LoadResult } from './loadgen.js';
import { cpuSeconds, peakRss, runJson, startServer } from './proc.js';
import type { IdMode } from './records.js';
import { resultsBase, writeResults } from './results-files.js';
import { median } from './stats.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const NODE_MAIN = here('../../apps/node/dist/main.js');
const BARE = here('./bare-server.js');
const LOADGEN = here('./loadgen.js');

const USAGE = `usage: pnpm bench:ingest [--duration 8] [--rounds 3] [--warmup 3] [--connections 500]
                         [--ids random,sequential] [--durability committed|flushed] [--out DIR]
One Replica node against a bare fastify server: ingest writes/s, latency and CPU per 1k writes.`;
const { values: args } = parseCli<Record<'duration' | 'rounds' | 'warmup' | 'connections' | 'ids' | 'durability' | 'out', string>>({
  name: 'bench:ingest',
  usage: USAGE,
  packageJson: new URL('../package.json', import.meta.url),
  options: {
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '500' },
    ids: { type: 'string', default: 'random,sequential' },
    durability: { type: 'string', default: 'committed' },
    out: { type: 'string', default: here('../results') },
  },
});
const durationSec = Number(args.duration);
const warmupSec = Number(args.warmup);
const connections = Number(args.connections);
const rounds = Number(args.rounds);
const idModes = (args.ids ?? '').split(',') as IdMode[];
for (const m of idModes) if (m !== 'random' && m !== 'sequential') usageError({ name: 'bench:ingest', usage: USAGE }, `--ids: unknown mode ${m}`);

interface Row {
  target: 'bare-fastify' | 'replica';
  ids: IdMode;
  writesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  serverCpuPer1kWrites: number;
  serverPeakRssMiB: number;
  loadgenCpuSec: number;
  recordBytes: number;
  records: number;
}

async function measure(target: Row['target'], ids: IdMode, runIndex: number): Promise<Row> {
  const dataDir = mkdtempSync(join(tmpdir(), 'replica-bench-'));
  const server =
    target === 'replica'
      ? await startServer(NODE_MAIN, { DATA_DIR: dataDir, PORT: '0', NODE_NAME: 'bench', LOG_LEVEL: 'info', WRITE_DURABILITY: args.durability ?? 'committed' })
      : await startServer(BARE, { PORT: '0' });
  // startServer resolves on the "listening" line, which replica prints at info level
  try {
    const job = (sec: number, prefix: string): LoadJob => ({
      urls: [server.url],
      connections,
      durationSec: sec,
      ids,
      table: 'bench',
      idPrefix: prefix,
    });
    if (warmupSec > 0) await runJson<LoadResult>(LOADGEN, job(warmupSec, `w${runIndex}`), (warmupSec + 60) * 1000);
    const cpu0 = cpuSeconds(server.pid);
    const r = await runJson<LoadResult>(LOADGEN, job(durationSec, `m${runIndex}`), (durationSec + 60) * 1000);
    const cpu = cpuSeconds(server.pid) - cpu0;
    return {
      target,
      ids,
      writesPerSec: Math.round(r.perSec),
      p50Ms: r.p50,
      p99Ms: r.p99,
      errors: r.non2xx + r.errors,
      serverCpuPer1kWrites: r.ok > 0 ? Number(((cpu * 1000) / r.ok).toFixed(4)) : 0,
      serverPeakRssMiB: Math.round(peakRss(server.pid) / 2 ** 20),
      loadgenCpuSec: Number(r.cpuSec.toFixed(2)),
      recordBytes: r.recordBytes,
      records: r.ok,
    };
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// Rounds alternate bare and replica runs so that drift in this shared machine's speed
// hits both; the table reports each configuration's median round.
const runs: Row[] = [];
let i = 0;
for (let round = 1; round <= rounds; round++) {
  for (const ids of idModes) {
    for (const target of ['bare-fastify', 'replica'] as const) {
      process.stderr.write(`round ${round}/${rounds}: ${target}, ${ids} ids, ${warmupSec}s warm-up + ${durationSec}s, ${connections} connections… `);
      const row = await measure(target, ids, i++);
      runs.push(row);
      process.stderr.write(`${row.writesPerSec} writes/s, p99 ${row.p99Ms} ms, errors ${row.errors}\n`);
    }
  }
}

const rows: Row[] = [];
for (const ids of idModes) {
  for (const target of ['bare-fastify', 'replica'] as const) {
    const mine = runs.filter((r) => r.target === target && r.ids === ids);
    const m = median(mine.map((r) => r.writesPerSec));
    rows.push({ ...(mine.find((r) => r.writesPerSec === m) ?? (mine[0] as Row)), writesPerSec: Math.round(m) });
  }
}
const ratios = idModes.map((ids) => {
  const perRound = Array.from({ length: rounds }, (_, r) => {
    const bare = runs.filter((x) => x.target === 'bare-fastify' && x.ids === ids)[r] as Row;
    const rep = runs.filter((x) => x.target === 'replica' && x.ids === ids)[r] as Row;
    return Number((rep.writesPerSec / bare.writesPerSec).toFixed(3));
  });
  return { ids, ratio: median(perRound), perRound };
});
const info = machineInfo();
const result = { benchmark: 'single-node-ingest', ...info, connections, durationSec, warmupSec, rounds, durability: args.durability, rows, ratios, runs };

const table = [
  '| target | ids | writes/s | p50 ms | p99 ms | errors | server CPU s / 1k writes | server peak RSS MiB | record bytes |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.target} | ${r.ids} | ${r.writesPerSec} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} | ${r.serverCpuPer1kWrites} | ${r.serverPeakRssMiB} | ${r.recordBytes} |`),
  '',
  ...ratios.map((r) => `replica / bare fastify, ${r.ids} ids: **${r.ratio}** (median of rounds: ${r.perRound.join(', ')})`),
].join('\n');
const header = `Single-node ingest — ${machineLine(info)}, ${connections} connections, ${rounds} rounds of ${durationSec} s per run (median shown), durability ${args.durability}`;

writeResults(resultsBase(args.out, 'ingest', info), { json: `${JSON.stringify(result, null, 2)}\n`, md: `${header}\n\n${table}\n` });
process.stdout.write(`\n${header}\n\n${table}\n\n`);
process.stdout.write(`${JSON.stringify(result)}\n`);
if (runs.some((r) => r.errors > 0)) process.exitCode = 1;

// Single-node ingest benchmark: 500 connections POSTing 400-byte, 8-field records to
// one Replica node, side by side with a bare fastify route (the HTTP ceiling here).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo } from './env-info.js';
import type { LoadJob, LoadResult } from './loadgen.js';
import { cpuSeconds, peakRss, runJson, startServer } from './proc.js';
import type { IdMode } from './records.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const NODE_MAIN = here('../../apps/node/dist/main.js');
const BARE = here('./bare-server.js');
const LOADGEN = here('./loadgen.js');

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
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
const idModes = (args.ids ?? '').split(',') as IdMode[];
for (const m of idModes) if (m !== 'random' && m !== 'sequential') throw new Error(`--ids: unknown mode ${m}`);

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

const rows: Row[] = [];
let i = 0;
for (const ids of idModes) {
  for (const target of ['bare-fastify', 'replica'] as const) {
    process.stderr.write(`running ${target} with ${ids} ids: ${warmupSec}s warm-up + ${durationSec}s, ${connections} connections…\n`);
    const row = await measure(target, ids, i++);
    rows.push(row);
    process.stderr.write(`  ${row.writesPerSec} writes/s, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, errors ${row.errors}\n`);
  }
}

const ratios = idModes.map((ids) => {
  const bare = rows.find((r) => r.target === 'bare-fastify' && r.ids === ids) as Row;
  const rep = rows.find((r) => r.target === 'replica' && r.ids === ids) as Row;
  return { ids, ratio: Number((rep.writesPerSec / bare.writesPerSec).toFixed(3)) };
});
const info = machineInfo();
const result = { benchmark: 'single-node-ingest', ...info, connections, durationSec, warmupSec, durability: args.durability, rows, ratios };

const table = [
  '| target | ids | writes/s | p50 ms | p99 ms | errors | server CPU s / 1k writes | server peak RSS MiB | record bytes |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.target} | ${r.ids} | ${r.writesPerSec} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} | ${r.serverCpuPer1kWrites} | ${r.serverPeakRssMiB} | ${r.recordBytes} |`),
  '',
  ...ratios.map((r) => `replica / bare fastify, ${r.ids} ids: **${r.ratio}**`),
].join('\n');
const header = `Single-node ingest — ${info['date']}, sha ${info['sha']}, ${info['cpu']} (${info['cores']} cores), Node ${info['node']}, ${connections} connections, ${durationSec} s per run, durability ${args.durability}`;

mkdirSync(args.out as string, { recursive: true });
const stamp = String(info['date']).replace(/[:.]/g, '-');
writeFileSync(join(args.out as string, `ingest-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(args.out as string, `ingest-${stamp}.md`), `${header}\n\n${table}\n`);
process.stdout.write(`\n${header}\n\n${table}\n\n`);
process.stdout.write(`${JSON.stringify(result)}\n`);
if (rows.some((r) => r.errors > 0)) process.exitCode = 1;

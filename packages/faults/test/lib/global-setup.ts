// Runs once around the whole fault suite: starts a fresh results log, and at the end
// prints the scenario × transport table that docs/reliability.md reports.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { RESULTS, SUITE_SEED, type ScenarioResult } from './harness.js';

export function setup(): void {
  rmSync(RESULTS, { force: true });
  process.env['FAULT_SEED'] ??= String(SUITE_SEED);
  console.log(`fault suite seed ${process.env['FAULT_SEED']} (replay: FAULT_SEED=${process.env['FAULT_SEED']} pnpm test:faults)`);
}

export function teardown(): void {
  if (!existsSync(RESULTS)) return;
  const rows = readFileSync(RESULTS, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ScenarioResult);
  const table = [
    '| scenario | transport | passed | acknowledged writes | lost | time to converge | peak RSS per node | notes |',
    '|---|---|---|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.scenario} | ${r.transport} | yes | ${r.acked} | ${r.lost} | ${(r.convergeMs / 1000).toFixed(1)} s | ${r.peakRssMiB} MiB | ${r.note ?? ''} |`),
  ].join('\n');
  writeFileSync(RESULTS.replace(/\.jsonl$/, '.md'), `${table}\n`);
  console.log(`\n${table}\n`);
}

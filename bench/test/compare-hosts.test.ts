// `pnpm compare --urls` against nodes on hosts of their own (issue 14, items 5 and 6): the
// multi-host rehearsal builds a cluster out of network namespaces, one node (and for nats
// one nats-server) per host address in 198.18.0.0/15, and the comparison runs from the
// client host against the nodes' addresses, as it would against real hosts. Needs root.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rehearsalUnavailable, startRehearsal, type Rehearsal } from '@replica/cluster';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

const unavailable = rehearsalUnavailable();
const COMPARE = fileURLToPath(new URL('../dist/compare.js', import.meta.url));

describe.skipIf(unavailable !== undefined).each([
  ['plexus', 'direct'],
  ['nats', 'per-write'],
] as const)(`pnpm compare --urls against %s nodes on hosts of their own${unavailable ? ` (skipped: ${unavailable})` : ''}`, (transport, mode) => {
  const out = mkdtempSync(join(tmpdir(), 'replica-compare-hosts-'));
  let rehearsal: Rehearsal | undefined;
  afterEach(async () => {
    await rehearsal?.stop();
    rehearsal = undefined;
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs from the client host, reads the transport and mode from each node, verifies every round, and prints the table and the JSON summary', async () => {
    const r = (rehearsal = await startRehearsal({ transport, hosts: 3 }));
    const urls = r.nodes.map((n) => n.url);
    expect(urls.every((u) => /^http:\/\/198\.18\.\d+\.\d+:\d+$/.test(u))).toBe(true);
    const run = await r.exec([process.execPath, COMPARE, '--urls', urls.join(','), '--ids', 'random', '--records', '600', '--warmup', '60', '--connections', '24', '--rounds', '3', '--out', out], { timeoutMs: 180_000 });
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const lines = run.stdout.trim().split('\n');
    const summary = JSON.parse(lines.at(-1) as string) as { runs: { transport: string; mode: string; nodes: number; round: number; records: number; errors: number; verified: boolean; cpuMsPerWrite: number }[]; ratios: { ratio: number | null }[] };
    expect(summary.runs.map((x) => `${x.transport}/${x.mode}/${x.round}`)).toEqual([0, 1, 2].map((k) => `${transport}/${mode}/${k}`));
    for (const x of summary.runs) {
      expect(x).toMatchObject({ nodes: 3, records: 600, errors: 0, verified: true });
      expect(x.cpuMsPerWrite, 'CPU read from the nodes’ /metrics').toBeGreaterThan(0);
    }
    expect(summary.ratios.every((x) => x.ratio === null)).toBe(true); // one path alone: no ratio
    expect(run.stdout).toContain(`running deployments ${urls.join(',')}`);
    expect(run.stdout).toMatch(/^\| nodes \| ids \| rounds \|/m);
    expect(run.stdout).toMatch(/^\| transport \| mode \| nodes \| ids \| round \|/m);
  });
});

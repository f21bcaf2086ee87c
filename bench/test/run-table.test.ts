import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { failedRun, type Run } from '../src/cluster-run.js';
import { runTable } from '../src/run-table.js';

const stored = JSON.parse(readFileSync(new URL('../results/compare-2026-11-26T16-06-55-739Z.json', import.meta.url), 'utf8')) as { runs: Run[] };
const cells = (line: string) => line.split(' | ').length;

describe('run table', () => {
  it('has as many cells in every row as in its header, with and without the round column', () => {
    const failed = { ...failedRun({ variant: 'nats-batched', nodes: 3, ids: 'random' }, new Error('a | b')), round: 1 };
    for (const round of [true, false]) {
      const lines = runTable([...stored.runs.map((r) => ({ ...r, round: 0 })), failed], { round }).split('\n');
      expect(lines).toHaveLength(stored.runs.length + 3);
      const width = cells(lines[0] as string);
      expect(width).toBe(round ? 14 : 13);
      expect((lines[1] as string).split('|').length - 2).toBe(width);
      for (const l of lines.slice(2)) expect(cells(l), l).toBe(width);
      expect(lines.at(-1)).toBe(`| nats | batched | 3 | random | ${round ? '2 | ' : ''}– | – | – | – | – | – | – | 1 | **FAILED**: a / b |`);
    }
  });

  it('shows a run with separators, its replicated/s in bold, and the load generator CPU in brackets', () => {
    const nats = stored.runs[1] as Run;
    const [, , row] = runTable([nats], { round: false }).split('\n');
    expect(row).toBe('| nats | per-write | 3 | random | 2,778 | **2,748** | 158.2 / 448.85 | 264.3 / 628.6 | 1 | 0.4663 + 0.144 (0.0505) | 322, 324, 346; 48, 48, 47 | 0 | yes |');
    expect(runTable([{ ...nats, verified: false }], { round: false })).toMatch(/\| \*\*NO\*\* \|$/);
  });
});

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { machineLine, type MachineInfo } from '../src/env-info.js';
import { resultsBase, writeResults } from '../src/results-files.js';

describe('results files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'replica-results-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const info: MachineInfo = { sha: 'abc123', node: 'v20.20.2', cpu: 'AMD EPYC', cores: 2, memoryGiB: 8, date: '2026-11-26T16:06:55.739Z' };

  it('names files after the benchmark and the date, without : or .', () => {
    expect(resultsBase('/r', 'compare', info)).toBe(join('/r', 'compare-2026-11-26T16-06-55-739Z'));
  });

  it('creates the directory and writes one file per extension', () => {
    const base = resultsBase(join(dir, 'new'), 'ingest', info);
    writeResults(base, { json: '{}\n', md: '# x\n' });
    expect(readdirSync(join(dir, 'new')).sort()).toEqual(['ingest-2026-11-26T16-06-55-739Z.json', 'ingest-2026-11-26T16-06-55-739Z.md']);
    expect(readFileSync(`${base}.md`, 'utf8')).toBe('# x\n');
  });

  it('names the machine in a header the same way for every benchmark', () => {
    expect(machineLine(info)).toBe('2026-11-26T16:06:55.739Z, sha abc123, AMD EPYC (2 cores), Node v20.20.2');
  });
});

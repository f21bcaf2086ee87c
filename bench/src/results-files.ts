// Where a benchmark's results go: files named after the benchmark and the date measured.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MachineInfo } from './env-info.js';

/** `<dir>/<benchmark>-<date>`, the date with `:` and `.` made `-`: the path of a result's files without extension. */
export function resultsBase(dir: string, benchmark: string, info: Pick<MachineInfo, 'date'>): string {
  return join(dir, `${benchmark}-${info.date.replace(/[:.]/g, '-')}`);
}

/** Writes each of `files` to `<base>.<extension>`, in the order given, creating the directory first. */
export function writeResults(base: string, files: Readonly<Record<string, string>>): void {
  mkdirSync(dirname(base), { recursive: true });
  for (const [ext, text] of Object.entries(files)) writeFileSync(`${base}.${ext}`, text);
}

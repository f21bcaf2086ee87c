import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';

/** What {@link backupStore} wrote. */
export interface BackupResult {
  /** Size of the copied data file. */
  readonly bytes: number;
  readonly ms: number;
}

/**
 * Copies the store at `dataDir` into `outDir` as one consistent snapshot: LMDB copies
 * the environment inside one read transaction, so the copy holds every write committed
 * before it started and none after, records, log and cursors together. It runs beside a
 * node that keeps writing (LMDB's readers never block its writer), from this process or
 * another. `outDir` must not exist or be empty; with `compact` (the default) free pages
 * are left out. Restoring is copying `outDir`'s `data.mdb` into an empty data directory:
 * the restored node then gets what was written after the backup from its peers, its own
 * writes included (docs/operations.md).
 */
export async function backupStore(dataDir: string, outDir: string, o: { readonly compact?: boolean } = {}): Promise<BackupResult> {
  const t0 = Date.now();
  if (!existsSync(join(dataDir, 'data.mdb'))) throw new Error(`no Replica store at ${dataDir} (no data.mdb there)`);
  if (existsSync(outDir) && readdirSync(outDir).length > 0) throw new Error(`${outDir} is not empty; a backup goes into a new or empty directory`);
  mkdirSync(outDir, { recursive: true });
  const env = open({ path: dataDir, readOnly: true });
  try {
    await env.backup(outDir, o.compact ?? true);
  } finally {
    await env.close();
  }
  return { bytes: statSync(join(outDir, 'data.mdb')).size, ms: Date.now() - t0 };
}

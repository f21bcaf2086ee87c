import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store, backupStore } from '../src/index.js';

describe('backupStore', () => {
  const dirs: string[] = [];
  const temp = () => {
    const d = mkdtempSync(join(tmpdir(), 'replica-backup-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('copies an open store that keeps writing into a store that opens with what committed before the copy', async () => {
    const dir = temp();
    const store = Store.open({ path: join(dir, 'n1'), nodeName: 'n1', pruneIntervalMs: 0 });
    try {
      for (let i = 0; i < 200; i++) await store.put('t', { id: `k${i}` });
      const writing = Promise.all(Array.from({ length: 200 }, (_, i) => store.put('t', { id: `late${i}` })));
      const r = await backupStore(join(dir, 'n1'), join(dir, 'copy'));
      await writing;
      expect(r.bytes).toBeGreaterThan(0);
      const copy = Store.open({ path: join(dir, 'copy'), nodeName: 'n1', pruneIntervalMs: 0 });
      try {
        expect(copy.verify()).toEqual([]);
        const count = copy.tables().t?.count ?? 0;
        expect(count).toBeGreaterThanOrEqual(200);
        // one transaction's view: the log, the cursor and the table agree
        expect(copy.cursors()['n1']).toBe(count);
        expect(copy.lastSeq()).toBe(count);
      } finally {
        await copy.close();
      }
    } finally {
      await store.close();
    }
  });

  it('refuses a directory without a store, and an output directory that is not empty, writing nothing', async () => {
    const dir = temp();
    await expect(backupStore(join(dir, 'none'), join(dir, 'out'))).rejects.toThrow(`no Replica store at ${join(dir, 'none')} (no data.mdb there)`);
    const store = Store.open({ path: join(dir, 'n1'), nodeName: 'n1', pruneIntervalMs: 0 });
    await store.put('t', { id: 'a' });
    await store.close();
    mkdirSync(join(dir, 'full'));
    writeFileSync(join(dir, 'full', 'keep'), 'x');
    await expect(backupStore(join(dir, 'n1'), join(dir, 'full'))).rejects.toThrow(`${join(dir, 'full')} is not empty; a backup goes into a new or empty directory`);
  });
});

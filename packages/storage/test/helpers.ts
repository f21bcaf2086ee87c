import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store, type StoreOptions } from '../src/index.js';

/** Opens stores in fresh temp dirs and removes them all in `cleanup()`. */
export function tempStores() {
  const dirs: string[] = [];
  const stores: Store[] = [];
  return {
    dir(): string {
      const d = mkdtempSync(join(tmpdir(), 'replica-store-'));
      dirs.push(d);
      return d;
    },
    open(nodeName: string, opts: Partial<StoreOptions> = {}, path?: string): Store {
      const s = Store.open({ path: path ?? this.dir(), nodeName, pruneIntervalMs: 0, ...opts });
      stores.push(s);
      return s;
    },
    async cleanup(): Promise<void> {
      await Promise.all(stores.map((s) => s.close()));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** A deterministic PRNG (mulberry32) so failures replay from the printed seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: readonly T[], rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

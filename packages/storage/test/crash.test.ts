import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { rng, tempStores } from './helpers.js';

const t = tempStores();
afterEach(() => t.cleanup());
const writer = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));

/** Runs the writer until it acknowledged `minAcks` writes plus a random extra delay, then SIGKILLs it. */
function writeThenKill(path: string, round: number, durability: string, delayMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, path, String(round), durability], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: string[] = [];
    let buf = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
        else acked.push(line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000); // never outlive the test
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited on its own: ${stderr}`));
      else resolve(acked);
    });
  });
}

describe('crash safety', () => {
  it.each(['committed', 'flushed'])(
    'every acknowledged write survives SIGKILL, 10 rounds in a row (durability %s)',
    async (durability) => {
      const seed = Date.now();
      const rand = rng(seed);
      const dir = t.dir();
      const everAcked: string[] = [];
      for (let round = 0; round < 10; round++) {
        const acked = await writeThenKill(dir, round, durability, 150 + Math.floor(rand() * 400));
        expect(acked.length, `round ${round}: the writer acknowledged nothing`).toBeGreaterThan(0);
        everAcked.push(...acked);
        const s = t.open('crash', {}, dir);
        const missing = everAcked.filter((id) => s.get('t', id) === undefined);
        expect(missing, `seed ${seed} round ${round}`).toEqual([]);
        expect(s.verify(), `seed ${seed} round ${round}`).toEqual([]);
        expect(s.cursors().crash).toBe(s.lastSeq());
        await s.close();
      }
    },
    120_000,
  );
});

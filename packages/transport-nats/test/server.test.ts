// Starting a nats-server: what the caller learns when it cannot.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startNatsServer } from '../src/index.js';

describe('nats-server: start-up errors', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  it('a server that cannot become healthy is killed, and the error says what /healthz answered and how its log ended', async () => {
    const root = mkdtempSync(join(tmpdir(), 'replica-nats-start-'));
    roots.push(root);
    // clustered, its only route leads nowhere: its JetStream never meets a meta leader
    const nowhere = await freePort('127.0.0.1');
    const start = startNatsServer({
      name: 'alone',
      dir: root,
      storeDir: join(root, 'alone'),
      clientPort: await freePort('127.0.0.1'),
      httpPort: await freePort('127.0.0.1'),
      clusterPort: await freePort('127.0.0.1'),
      routes: [`nats-route://127.0.0.1:${nowhere}`],
      readyTimeoutMs: 2000,
    });
    const err = (await start.then(
      () => undefined,
      (e: unknown) => e,
    )) as Error | undefined;
    expect(err?.message).toMatch(/^nats-server alone not healthy in time .*; \/healthz answered 503 .*meta leader.*; see .*alone\.log, which ended:\n/);
    // the tail is the server's own lines, not the warnings our polls caused
    expect(err?.message).toMatch(/\[INF\]|\[WRN\]|\[ERR\]/);
    expect(err?.message).not.toContain('Healthcheck failed');
    // killed: no process runs its config any more
    const running = spawnSync('pgrep', ['-f', join(root, 'alone.conf')]);
    expect(running.status, String(running.stdout)).toBe(1);
  });

  it('a binary that does not exist is named at once, not after the readiness timeout', async () => {
    const root = mkdtempSync(join(tmpdir(), 'replica-nats-start-'));
    roots.push(root);
    const t0 = Date.now();
    const start = startNatsServer({
      name: 'missing',
      dir: root,
      bin: join(root, 'no-such-nats-server'),
      storeDir: join(root, 'missing'),
      clientPort: await freePort('127.0.0.1'),
      httpPort: await freePort('127.0.0.1'),
    });
    await expect(start).rejects.toThrow(/^nats-server missing could not be started: spawn .*no-such-nats-server ENOENT \(is nats-server installed\? bin: /);
    expect(Date.now() - t0, 'well before the 20 s readiness timeout').toBeLessThan(5000);
  });
});

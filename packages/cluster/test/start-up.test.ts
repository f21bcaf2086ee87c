import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../src/index.js';

describe('start-up through /health', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('finds a node ready by its /health, whatever it logs', async () => {
    cluster = await startCluster({ nodes: 1, transport: 'none', env: { LOG_LEVEL: 'error' } });
    const res = await fetch(`${cluster.nodes[0]?.url}/health`);
    expect(res.status).toBe(200);
  });

  it('resolves only once every node of a replicating cluster answers /ready', async () => {
    cluster = await startCluster({ nodes: 2, transport: 'plexus' });
    for (const n of cluster.nodes) expect((await fetch(`${n.url}/ready`)).status).toBe(200);
    await cluster.waitReady(1000);
  });

  it('fails fast, with what the node printed, when it exits during start-up', async () => {
    const started = Date.now();
    const failure = startCluster({ nodes: 1, transport: 'none', env: { WRITE_DURABILITY: 'maybe' } });
    await expect(failure).rejects.toThrow(/^n1 exited during start-up; see .*[/\\]n1\.log:\n[\s\S]*WRITE_DURABILITY must be one of/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('names the node and its log when it is not ready within readyTimeoutMs', async () => {
    await expect(startCluster({ nodes: 1, transport: 'none', readyTimeoutMs: 1 })).rejects.toThrow(/^n1 did not start within 1 ms; see .*[/\\]n1\.log$/);
  });

  it('refuses to restart a node that still runs, and restarts it once killed', async () => {
    cluster = await startCluster({ nodes: 1, transport: 'none' });
    const c = cluster;
    const pid = c.nodes[0]?.pid;
    await expect(c.restart(0)).rejects.toThrow(`n1 is still running (pid ${pid}); kill it before restarting it`);
    await c.kill(0);
    await c.restart(0);
    expect(c.nodes[0]?.pid).not.toBe(pid);
    expect((await fetch(`${c.nodes[0]?.url}/health`)).status).toBe(200);
  });
});

// Resource exhaustion: a node's disk (a real, size-limited tmpfs) fills up under load,
// on both transports, and then space returns; for nats also the broker's JetStream store
// reaching max_file_store. Each scenario ends with the usual check (every acknowledged
// write on every node, identical tables) and checks that no node process exited.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterOptions } from '@replica/cluster';
import { mountTmpfs, tmpfsUnavailable, type TmpfsMount } from '@replica/transport-api/testing/tmpfs';
import { checkConverged, insertLoad, logsOf, peakRssMiB, recordResult, seeded, sleep, status, type Load } from './lib/harness.js';

const MiB = 1024 * 1024;
const TRANSPORTS = ['plexus', 'nats'] as const;
const noTmpfs = tmpfsUnavailable();

interface NodeStorage {
  state: string;
  freeBytes?: number;
  refusedWrites: Record<string, number>;
  failedCommits: number;
  cause?: { message: string };
}

/** How a node's store turned full: its replicated writes reached the engine's reserve, or a commit ran out of space first. */
const howFull = (s: NodeStorage): string => (s.failedCommits > 0 ? `a commit failed for lack of space (${s.failedCommits})` : "replicated writes reached the engine's reserve");

const storageOf = async (url: string): Promise<NodeStorage> => ((await (await fetch(`${url}/status`, { signal: AbortSignal.timeout(5000) })).json()) as { storage: NodeStorage }).storage;

/** Polls `check` every 100 ms; returns the ms it took, or throws with `what` and the logs after `timeoutMs`. */
async function until(c: Cluster, check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      if (await check()) return Date.now() - t0;
    } catch {
      // a node is busy; ask again
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms\n${logsOf(c)}`);
    await sleep(100);
  }
}

/** Node processes that are no longer the ones started at first (exited, or replaced). */
function exitedNodes(c: Cluster, pids: readonly number[]): string[] {
  return c.nodes
    .filter((n, i) => {
      if (n.pid !== pids[i]) return true;
      try {
        process.kill(n.pid, 0);
        return false;
      } catch {
        return true;
      }
    })
    .map((n) => n.name);
}

/** `<node> <status>` → count, of a load's writes that were not answered 201. */
const refusals = (load: Load) => Object.fromEntries([...load.refused].map(([k, ids]) => [k, ids.length]));

describe.skipIf(noTmpfs !== undefined).each(TRANSPORTS)(`a disk that fills up, on %s${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, (transport) => {
  let cluster: Cluster | undefined;
  let mount: TmpfsMount | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
    mount?.unmount();
    mount = undefined;
  });

  /** A 3-node cluster whose node `full` has its data on a 3 MiB tmpfs. */
  const start = async (full: number, extra: Partial<ClusterOptions> = {}): Promise<Cluster> => {
    const m = (mount = mountTmpfs(3 * MiB));
    cluster = await startCluster({
      nodes: 3,
      transport,
      ...(transport === 'nats' ? { natsMode: 'per-write' as const } : {}),
      dataDir: (_name, i) => (i === full ? m.dir : undefined),
      ...extra,
      env: { CONFIRM_TIMEOUT_MS: '3000', ...extra.env },
    });
    return cluster;
  };

  /** The filesystem grows to 64 MiB; resolves with the ms until node `i` is ready again (writes accepted, caught up). */
  const spaceReturns = async (c: Cluster, i: number): Promise<number> => {
    (mount as TmpfsMount).resize(64 * MiB);
    const url = c.nodes[i]?.url as string;
    return until(c, async () => (await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2000) })).status === 200, 30_000, `${c.nodes[i]?.name} ready again after the disk grew`);
  };

  /**
   * The end both scenarios share: space returns on node i, writes go to every node again,
   * and the usual check runs (every acknowledged write everywhere, one digest, no process
   * exited). `note` gets how long node i took to be ready again.
   */
  const recoverAndCheck = async (c: Cluster, i: number, o: { scenario: string; seed: number; prefix: string; acked: readonly string[]; pids: readonly number[]; note: (recoveryMs: number) => string }): Promise<void> => {
    const recoveryMs = await spaceReturns(c, i);
    const after = insertLoad(c, { targets: () => [0, 1, 2], prefix: o.prefix, concurrency: 6, maxWrites: 150, maxMs: 30_000 });
    await after.done;
    expect(after.failed(), `${JSON.stringify(refusals(after))}\n${logsOf(c)}`).toBe(0);
    const acked = [...o.acked, ...after.acked];
    const r = await checkConverged(c, { acked });
    expect(exitedNodes(c, o.pids), 'no node process exited').toEqual([]);
    recordResult({ scenario: o.scenario, transport, acked: acked.length, lost: r.lost, convergeMs: r.convergeMs, peakRssMiB: peakRssMiB(c), seed: o.seed, note: o.note(recoveryMs) });
  };

  it('the writer\'s disk fills under load, then space returns', async () => {
    const scenario = 'writer\'s disk fills (3 MiB), then grows';
    const { seed } = seeded(`${transport}/${scenario}`);
    const c = await start(0);
    const pids = c.nodes.map((n) => n.pid);
    // n1 takes half of the writes, n2 the other half; n1's disk takes both
    const load = insertLoad(c, { targets: () => [0, 1], prefix: 'w', concurrency: 16, maxWrites: 30_000, maxMs: 50_000 });
    const fillMs = await until(c, async () => (await storageOf(c.nodes[0]?.url as string)).state === 'full', 45_000, 'n1 full');
    // n1 full: its own writes are refused, n2 goes on; n2's writes wait in n2's log (plexus)
    // or stream (nats) for n1
    await sleep(1500);
    await load.stop();
    const n1 = await storageOf(c.nodes[0]?.url as string);
    const refused = refusals(load);
    const n1Refused = Object.entries(refused).filter(([k]) => k.startsWith('n1 ')).reduce((a, [, v]) => a + v, 0);
    expect(Object.keys(refused).every((k) => k === 'n1 507'), `only n1 refused writes, with 507: ${JSON.stringify(refused)}`).toBe(true);
    expect(n1Refused, 'n1 refused writes').toBeGreaterThan(0);
    expect(n1.refusedWrites['low'], 'n1 refused its own writes below the floor before its disk was full').toBeGreaterThan(0);
    // then its peer's writes filled it to the engine's reserve (or a batch ran out of space first)
    expect(n1.state).toBe('full');
    expect(n1.cause?.message ?? '', howFull(n1)).toMatch(n1.failedCommits > 0 ? /space/i : /storage engine's reserve/);
    const ready = await fetch(`${c.nodes[0]?.url}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toMatch(/storage full/);
    await recoverAndCheck(c, 0, { scenario, seed, prefix: 'w2', acked: load.acked, pids, note: (recoveryMs) => `n1 full after ${(fillMs / 1000).toFixed(1)} s (${howFull(n1)}); ${n1Refused} writes refused with 507 (${n1.refusedWrites['low']} below the floor, ${n1.refusedWrites['full']} full); ready again ${(recoveryMs / 1000).toFixed(1)} s after the disk grew; no process exited` });
  });

  it('a follower\'s disk fills under load, then space returns', async () => {
    const scenario = 'follower\'s disk fills (3 MiB), then grows';
    const { seed } = seeded(`${transport}/${scenario}`);
    const c = await start(2);
    const pids = c.nodes.map((n) => n.pid);
    const load = insertLoad(c, { targets: () => [0, 1], prefix: 'f', concurrency: 16, maxWrites: 30_000, maxMs: 50_000 });
    const fillMs = await until(c, async () => (await storageOf(c.nodes[2]?.url as string)).state === 'full', 45_000, 'n3 full');
    // n3 holds its peers' streams back; they keep taking writes
    await sleep(2000);
    await load.stop();
    expect(load.failed(), `writes to n1 and n2 are not affected: ${JSON.stringify(refusals(load))}\n${logsOf(c)}`).toBe(0);
    const n3 = await storageOf(c.nodes[2]?.url as string);
    expect(n3.state).toBe('full');
    expect(n3.refusedWrites['full'], "n3 refused its peers' batches").toBeGreaterThan(0);
    expect(n3.cause?.message ?? '', howFull(n3)).toMatch(n3.failedCommits > 0 ? /space/i : /storage engine's reserve/);
    const behind = (await status(c.nodes[2]?.url as string)).tables['items']?.count ?? 0;
    expect(behind, 'n3 is behind while full').toBeLessThan(load.acked.length);
    await recoverAndCheck(c, 2, { scenario, seed, prefix: 'f2', acked: load.acked, pids, note: (recoveryMs) => `n3 full after ${(fillMs / 1000).toFixed(1)} s (${howFull(n3)}) holding ${behind} records; 0 writes refused (n3 took none); n3 caught up and ready ${(recoveryMs / 1000).toFixed(1)} s after its disk grew; no process exited` });
  });
});

describe.each(['per-write', 'batched'] as const)('the broker\'s JetStream store reaches max_file_store (nats %s)', (mode) => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('refuses nothing it acknowledged, says why, and ships everything once the broker has room', async () => {
    const scenario = `nats-server's JetStream store full (max_file_store 1 MB), ${mode}`;
    const { seed } = seeded(`nats/${scenario}`);
    const c = (cluster = await startCluster({
      nodes: 3,
      transport: 'nats',
      natsMode: mode,
      natsMaxFileStore: (name) => (name === 'n1' ? '1MB' : undefined),
      env: { CONFIRM_TIMEOUT_MS: '2000' },
    }));
    const pids = c.nodes.map((n) => n.pid);
    const counters = async (i: number) => ((await (await fetch(`${c.nodes[i]?.url}/status`)).json()) as { replication: { counters: Record<string, number> } }).replication.counters;
    const load = insertLoad(c, { targets: () => [0, 1], prefix: 'j', concurrency: 16, maxWrites: 30_000, maxMs: 50_000 });
    const fillMs = await until(c, async () => ((await counters(0))['brokerStorageFull'] ?? 0) > 0, 45_000, 'n1\'s broker full');
    await sleep(3000);
    await load.stop();
    const refused = refusals(load);
    // per-write: n1's writes commit locally and answer 504 once the broker cannot take
    // them; batched answers do not wait for the broker. Nothing else fails.
    const allowed = mode === 'per-write' ? ['n1 504'] : [];
    expect(Object.keys(refused).every((k) => allowed.includes(k)), `unexpected answers: ${JSON.stringify(refused)}\n${logsOf(c)}`).toBe(true);
    const shipTimeouts = load.refused.get('n1 504') ?? [];
    if (mode === 'per-write') expect(shipTimeouts.length, 'n1\'s writes were answered 504 while its broker was full').toBeGreaterThan(0);
    const log = readFileSync(c.nodes[0]?.logFile as string, 'utf8');
    expect(log.match(/JetStream storage is full/g)?.length, 'the cause is logged once').toBe(1);
    // the operator makes room: a larger max_file_store (2.9 cannot reload it: restart)
    const server = c.natsServers[0];
    if (!server) throw new Error('no nats-server for n1');
    writeFileSync(server.configFile, readFileSync(server.configFile, 'utf8').replace(/max_file_store: .*/, 'max_file_store: 64MB'));
    const t0 = Date.now();
    await server.restart();
    // every write n1 committed, the 504s included, reaches every node
    const acked = [...load.acked, ...shipTimeouts];
    const r = await checkConverged(c, { acked, timeoutMs: 45_000 });
    const recoveryMs = Date.now() - t0;
    const shipped = await counters(0);
    expect(exitedNodes(c, pids), 'no node process exited').toEqual([]);
    const after = insertLoad(c, { targets: () => [0, 1, 2], prefix: 'j2', concurrency: 6, maxWrites: 150, maxMs: 30_000 });
    await after.done;
    expect(after.failed(), `${JSON.stringify(refusals(after))}\n${logsOf(c)}`).toBe(0);
    await checkConverged(c, { acked: [...acked, ...after.acked] });
    recordResult({
      scenario,
      transport: 'nats',
      acked: load.acked.length + after.acked.length,
      lost: r.lost,
      convergeMs: r.convergeMs,
      peakRssMiB: peakRssMiB(c),
      seed,
      note: `broker full after ${(fillMs / 1000).toFixed(1)} s (${shipped['brokerStorageFull']} refused publishes); ${shipTimeouts.length} writes answered 504 (committed, shipped later; all on every node); converged ${(recoveryMs / 1000).toFixed(1)} s after the server restarted with room; no process exited`,
    });
  });
});

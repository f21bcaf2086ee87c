// The multi-host rehearsal (issue 14, item 6): each node on a "host" of its own — a
// network namespace with its own address in 198.18.0.0/15, joined to the others by a
// bridge — and the writes sent from a client host. Needs root and iproute2's ip.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createHostNetwork, rehearsalUnavailable, removeStaleHostNetworks, startRehearsal, type Rehearsal } from '../src/index.js';
import type { ListedMember, Status } from './load.js';

const unavailable = rehearsalUnavailable();
const CLIENT = fileURLToPath(new URL('./multihost-client.mjs', import.meta.url));
const COUNT = 2000;

const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Processes whose command line names a temp dir of this process's rehearsals (nats-servers: their config file). */
const processesOfRehearsals = () =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(`replica-rehearsal-${process.pid}-`);
      } catch {
        return false; // exited meanwhile
      }
    })
    .map((d) => `pid ${d}`);
/** What a rehearsal of this process could have left: its namespaces, temp dirs and processes, live processes of `pids`. */
const leftovers = (pids: readonly number[] = []) => [
  ...namespaces().filter((n) => n.startsWith(`rpl-${process.pid}-`)),
  ...readdirSync(tmpdir()).filter((d) => d.startsWith(`replica-rehearsal-${process.pid}-`)),
  ...processesOfRehearsals(),
  ...pids.filter(alive).map((p) => `pid ${p}`),
];

const logs = (r: Rehearsal) =>
  [...r.nodes.map((n) => n.logFile), ...r.natsServers.map((s) => s.logFile)]
    .filter((f) => existsSync(f))
    .map((f) => `--- ${f}\n${readFileSync(f, 'utf8').split('\n').slice(-12).join('\n')}`)
    .join('\n');

describe.skipIf(unavailable !== undefined).each(['plexus', 'nats'] as const)(`a cluster of %s nodes on hosts of their own${unavailable ? ` (skipped: ${unavailable})` : ''}`, (transport) => {
  let rehearsal: Rehearsal | undefined;
  afterEach(async () => {
    await rehearsal?.stop();
    rehearsal = undefined;
  });

  it('holds every write acknowledged to a client on another host on every node, and leaves nothing behind', async () => {
    const r = (rehearsal = await startRehearsal({ transport, hosts: 3 }));
    const pids = [...r.nodes.map((n) => n.pid), ...r.natsServers.map((s) => s.pid)];
    expect(r.nodes.map((n) => n.url)).toEqual(['http://198.18.0.1:8080', 'http://198.18.0.2:8080', 'http://198.18.0.3:8080']);
    expect(new Set(r.nodes.map((n) => n.namespace)).size).toBe(3);

    // The load runs as its own process on the client host, as a load generator on another machine would.
    const run = await r.exec([process.execPath, CLIENT, 'write', JSON.stringify({ urls: r.nodes.map((n) => n.url), count: COUNT, concurrency: 24, prefix: transport })], { timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    const { acked, refused } = JSON.parse(run.stdout) as { acked: string[]; refused: Record<string, number> };
    // nothing fails in a healthy cluster: every write is acknowledged
    expect(refused, logs(r)).toEqual({});
    expect(acked).toHaveLength(COUNT);

    // Converged: identical tables (count and digest) everywhere, holding every write.
    const statusOf = async (url: string) => (await (await r.fetch(`${url}/status`)).json()) as Status;
    const deadline = Date.now() + 30_000;
    let tables: string[] = [];
    for (;;) {
      const s = await Promise.all(r.nodes.map((n) => statusOf(n.url)));
      tables = s.map((x) => JSON.stringify(x.tables));
      if (new Set(tables).size === 1 && s[0]?.tables['items']?.count === COUNT && s.every((x) => x.replication.peers.every((p) => p.connected))) break;
      if (Date.now() > deadline) throw new Error(`no convergence within 30 s:\n${tables.join('\n')}\n${logs(r)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Every acknowledged write, read back from every node by the client host; an id never
    // written goes along, to show the check notices what a node does not hold.
    const check = await r.exec([process.execPath, CLIENT, 'check', JSON.stringify({ urls: r.nodes.map((n) => n.url), concurrency: 48 })], { input: JSON.stringify([...acked, 'never-written']), timeoutMs: 60_000 });
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toEqual({ missing: Object.fromEntries(r.nodes.map((n) => [n.url, ['never-written']])) });
    // The links really run between the hosts' addresses.
    if (transport === 'plexus') {
      const res = await r.fetch(`${r.nodes[0]?.url}/cluster/members`, { headers: { authorization: `Bearer ${r.adminToken}` } });
      const members = ((await res.json()) as { members: ListedMember[] }).members;
      expect(members.map((m) => [m.name, m.address, m.state]).sort()).toEqual(r.nodes.map((n) => [n.name, `${n.address}:9800`, 'active']));
      const peers = (await statusOf(r.nodes[0]?.url as string)).replication.peers as unknown as { name: string; info: Record<string, string> }[];
      expect(peers.map((p) => [p.name, p.info['certificate']])).toEqual([['n2', 'n2'], ['n3', 'n3']]);
    } else {
      for (const s of r.natsServers) {
        const routez = (await (await r.fetch(`${s.monitorUrl}/routez`)).json()) as { routes: { ip: string }[] };
        const others = r.natsServers.filter((o) => o !== s).map((o) => o.address);
        expect([...new Set(routez.routes.map((x) => x.ip))].sort(), `${s.name}'s routes`).toEqual(others);
      }
    }

    // what stop() must remove is seen while it runs
    expect(leftovers(pids)).toEqual(expect.arrayContaining([...r.namespaces, ...pids.map((p) => `pid ${p}`)]));
    await r.stop();
    expect(leftovers(pids)).toEqual([]);
  });
});

describe.skipIf(unavailable !== undefined)(`a rehearsal that fails to start${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('removes everything it made: namespaces (and what ran in them), nats-servers, temp dir', async () => {
    // LOG_LEVEL=loud is a configuration error: the nodes exit with status 2 once the nats-servers run
    await expect(startRehearsal({ transport: 'nats', hosts: 2, env: { LOG_LEVEL: 'loud' }, readyTimeoutMs: 15_000 })).rejects.toThrow(/exited during start-up[\s\S]*LOG_LEVEL/);
    expect(leftovers()).toEqual([]);
  });
});

describe.skipIf(unavailable !== undefined)(`leftovers of a crashed rehearsal${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('are removed, processes in its namespaces included, before the next one starts', async () => {
    // the PID of a process that has exited: the run that made these is gone
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    const prefix = `rpl-${gone.pid}-1-`;
    const net = createHostNetwork([{ name: 'n1', address: '198.18.0.1' }], { prefix });
    const stray = spawn(net.ip, ['netns', 'exec', `${prefix}n1`, process.execPath, '-e', 'setTimeout(() => {}, 300_000)'], { stdio: 'ignore' });
    const strayExit = new Promise((resolve) => stray.once('exit', resolve));
    const dir = mkdtempSync(join(tmpdir(), `replica-rehearsal-${gone.pid}-1-`));
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(namespaces()).toEqual(expect.arrayContaining([...net.namespaces]));
      const removed = removeStaleHostNetworks();
      expect(removed).toEqual(expect.arrayContaining([...net.namespaces, dir]));
      await strayExit;
      expect(stray.signalCode).toBe('SIGKILL');
      expect(namespaces().filter((n) => n.startsWith(prefix))).toEqual([]);
      expect(existsSync(dir)).toBe(false);
    } finally {
      stray.kill('SIGKILL');
      net.destroy();
    }
  });
});

import { readFileSync } from 'node:fs';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { expect } from 'vitest';
import type { Cluster, ClusterNode } from '../src/index.js';

export interface Status {
  tables: Record<string, { count: number; digest: string }>;
  replication: { peers: { name: string; connected: boolean }[] };
}
export const status = async (url: string) => (await (await fetch(`${url}/status`)).json()) as Status;

/**
 * POSTs `count` records spread over the nodes (write n goes to node n mod the node count,
 * of `targets()` when given), `concurrency` at a time, or fewer once `more()` turns
 * false; returns the ids answered 201.
 */
export async function writeLoad(
  cluster: Cluster,
  prefix: string,
  count: number,
  concurrency: number,
  targets: () => readonly Cluster['nodes'][number][] = () => cluster.nodes,
  more: () => boolean = () => true,
): Promise<{ acked: string[]; failed: number }> {
  const acked: string[] = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < count && more()) {
      const n = next++;
      const nodes = targets();
      const node = nodes[n % nodes.length];
      const id = `${prefix}-${n}`;
      try {
        const r = await fetch(`${node?.url}/items`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id, n, pad: 'x'.repeat(300) }),
          signal: AbortSignal.timeout(10_000),
        });
        if (r.status === 201) acked.push(id);
        else failed++;
      } catch {
        failed++; // that node is down: the write was not acknowledged
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { acked, failed };
}


/**
 * Waits (up to 40 s) until every node shows the same tables, counts and digests, holds
 * at least `ids.length` items and sees all its peers connected; then checks that every
 * id in `ids` is on every node.
 */
export async function convergedAndComplete(c: Cluster, ids: readonly string[], logs: () => string): Promise<void> {
  const deadline = Date.now() + 40_000;
  let digests: string[] = [];
  for (;;) {
    const s = await Promise.all(c.nodes.map((n) => status(n.url)));
    digests = s.map((x) => JSON.stringify(x.tables));
    const linksUp = s.every((x) => x.replication.peers.every((p) => p.connected));
    if (new Set(digests).size === 1 && linksUp && (s[0]?.tables['items']?.count ?? 0) >= ids.length) break;
    if (Date.now() > deadline) throw new Error(`no convergence:\n${digests.join('\n')}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const node of c.nodes) {
    const missing: string[] = [];
    for (let i = 0; i < ids.length; i += 50) {
      const got = await Promise.all(ids.slice(i, i + 50).map((id) => fetch(`${node.url}/items/${id}`).then((r) => [id, r.status] as const)));
      for (const [id, st] of got) if (st !== 200) missing.push(id);
    }
    expect(missing, `${node.name} misses acknowledged writes`).toEqual([]);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 100 ms until it returns true; fails with `what` after `ms`. */
export async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(100);
  }
}

/** A node's cursors, from its /status. */
export const cursorsOf = async (url: string) => ((await (await fetch(`${url}/status`)).json()) as { cursors: Record<string, number> }).cursors;

/**
 * Polls node's /ready until it answers 200; at that moment its cursors must cover what
 * `before` held (the seed's cursors taken before the node started): ready means caught up.
 * Returns how many 503 answers came first.
 */
export async function readyOnlyWhenCaughtUp(node: ClusterNode, before: Record<string, number>): Promise<number> {
  let notReady = 0;
  await until(`${node.name} ready`, 30_000, async () => {
    const r = await fetch(`${node.url}/ready`);
    if (r.status === 503) {
      expect(((await r.json()) as { code: string }).code).toBe('REPLICA_ERR_NOT_READY');
      notReady++;
      return false;
    }
    expect(r.status).toBe(200);
    const cursors = await cursorsOf(node.url);
    for (const [origin, n] of Object.entries(before)) expect(cursors[origin] ?? 0, `${node.name} ready before it applied ${origin} ${n}`).toBeGreaterThanOrEqual(n);
    return true;
  });
  return notReady;
}

/** The last `lines` lines of every node's log, for a failure message. */
export const tailLogs = (c: Cluster, lines = 12) => c.nodes.map((n) => `--- ${n.name}\n${readFileSync(n.logFile, 'utf8').split('\n').slice(-lines).join('\n')}`).join('\n');

/** A member as `GET /cluster/members` lists it. */
export interface ListedMember {
  name: string;
  address: string;
  state: 'active' | 'removed';
  revoked: string[];
  connected: boolean;
}

/** The member list as `node` sees it (through its admin API, with the cluster's token). */
export async function membersOf(c: Cluster, node: ClusterNode): Promise<ListedMember[]> {
  const r = await fetch(`${node.url}/cluster/members`, { headers: { authorization: `Bearer ${c.adminToken}` } });
  return ((await r.json()) as { members: ListedMember[] }).members;
}

/** camelCase to snake_case, as /metrics names a transport's figures. */
const snake = (k: string) => k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

/**
 * Parses a node's /metrics with a Prometheus text parser and checks that every figure its
 * transport reports in /status (per peer and transport-wide, counters and gauges) is there
 * as the kind the transport declares, with one sample per peer, and that the default
 * Node.js metrics are there too.
 */
export async function expectTransportFiguresInMetrics(url: string): Promise<void> {
  const rep = (
    (await (await fetch(`${url}/status`)).json()) as {
      replication: { peers: { name: string; counters: Record<string, number>; gauges: Record<string, number> }[]; counters: Record<string, number>; gauges: Record<string, number> };
    }
  ).replication;
  const m = new Map(parsePrometheusTextFormat(await (await fetch(`${url}/metrics`)).text()).map((f) => [f.name, f]));
  for (const name of ['nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total', 'replica_build_info']) expect(m.has(name), name).toBe(true);
  const check = (name: string, type: 'COUNTER' | 'GAUGE', peers: readonly string[]) => {
    const f = m.get(name);
    expect(f?.type, name).toBe(type);
    if (peers.length) expect(f?.metrics.map((x) => x.labels?.['peer']).sort(), name).toEqual([...peers].sort());
  };
  expect(rep.peers.length).toBeGreaterThan(0);
  let figures = 0;
  for (const key of new Set(rep.peers.flatMap((p) => Object.keys(p.counters)))) {
    check(`replica_peer_${snake(key)}_total`, 'COUNTER', rep.peers.filter((p) => key in p.counters).map((p) => p.name));
    figures++;
  }
  for (const key of new Set(rep.peers.flatMap((p) => Object.keys(p.gauges)))) check(`replica_peer_${snake(key)}`, 'GAUGE', rep.peers.filter((p) => key in p.gauges).map((p) => p.name));
  for (const key of Object.keys(rep.counters)) check(`replica_transport_${snake(key)}_total`, 'COUNTER', []);
  for (const key of Object.keys(rep.gauges)) check(`replica_transport_${snake(key)}`, 'GAUGE', []);
  expect(figures).toBeGreaterThan(0);
}

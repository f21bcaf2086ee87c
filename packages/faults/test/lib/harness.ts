// The fault suite's tools: seeded randomness, a write load that records what was
// acknowledged, the end-of-scenario check, memory sampling and a result log.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, onTestFailed } from 'vitest';
import type { Cluster } from '@replica/cluster';

export const RESULTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'results', 'faults.jsonl');

// ------------------------------------------------------------------ seeds

/** The suite's seed: FAULT_SEED when set (to replay a failure), else a fresh one. */
export const SUITE_SEED = process.env['FAULT_SEED'] !== undefined ? Number(process.env['FAULT_SEED']) : Math.floor(Math.random() * 2 ** 31);

/**
 * A seeded random source for one scenario; its seed is printed when the test fails,
 * with the command that replays it.
 */
export function seeded(scenario: string): { seed: number; random: () => number; int: (lo: number, hi: number) => number; pick: <T>(xs: readonly T[]) => T } {
  let h = SUITE_SEED >>> 0;
  for (const ch of scenario) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  const seed = h;
  onTestFailed(() => {
    console.error(`\n*** fault scenario "${scenario}" failed — suite seed ${SUITE_SEED}; replay with FAULT_SEED=${SUITE_SEED} pnpm test:faults\n`);
  });
  let a = seed;
  const random = () => {
    // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { seed, random, int: (lo, hi) => lo + Math.floor(random() * (hi - lo + 1)), pick: (xs) => xs[Math.floor(random() * xs.length)] as never };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ load

export interface LoadOptions {
  /** Node indices to write to, asked before every request (a scenario may change them). */
  readonly targets: () => readonly number[];
  readonly prefix: string;
  readonly concurrency: number;
  /** Stop after this many requests… */
  readonly maxWrites: number;
  /** …or this many ms, whichever comes first. */
  readonly maxMs: number;
  readonly table?: string;
  /** Filler per record, bytes. Default 300. */
  readonly padBytes?: number;
  readonly token?: string;
}

/** A running insert load: every id answered 201 is in `acked`. Bounded in count and time. */
export interface Load {
  readonly acked: string[];
  readonly failed: () => number;
  /** Ids of the writes not answered 201, by `<node> <status>` (status 0: no answer). */
  readonly refused: ReadonlyMap<string, readonly string[]>;
  readonly done: Promise<void>;
  /** Stops issuing requests; resolves when every request in flight has finished. */
  stop(): Promise<void>;
}

export function insertLoad(cluster: Cluster, o: LoadOptions): Load {
  const acked: string[] = [];
  const refused = new Map<string, string[]>();
  const refuse = (node: string, status: number, id: string) => {
    const key = `${node} ${status}`;
    const ids = refused.get(key);
    if (ids) ids.push(id);
    else refused.set(key, [id]);
  };
  let failed = 0;
  let next = 0;
  let stopped = false;
  const deadline = Date.now() + o.maxMs;
  const pad = 'x'.repeat(o.padBytes ?? 300);
  const table = o.table ?? 'items';
  const worker = async () => {
    while (!stopped && next < o.maxWrites && Date.now() < deadline) {
      const n = next++;
      const targets = o.targets();
      const node = cluster.nodes[targets[n % targets.length] as number];
      const id = `${o.prefix}-${n}`;
      try {
        const r = await fetch(`${node?.url}/${table}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
          body: JSON.stringify({ id, n, pad }),
          signal: AbortSignal.timeout(5000),
        });
        const body = await r.text();
        if (r.status === 201) acked.push(id);
        else {
          failed++;
          refuse(node?.name ?? '?', r.status, id);
          // DEBUG_LOAD=1 shows what a refused write was answered (a scenario expecting none failing).
          if (process.env['DEBUG_LOAD']) console.log('load: refused', node?.name, r.status, body.slice(0, 200));
        }
      } catch {
        failed++; // the node is down, frozen or too slow: not acknowledged
        refuse(node?.name ?? '?', 0, id);
        await sleep(20);
      }
    }
  };
  const done = Promise.all(Array.from({ length: o.concurrency }, worker)).then(() => {});
  return {
    acked,
    failed: () => failed,
    refused,
    done,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

// ------------------------------------------------------------------ checks

interface Status {
  tables: Record<string, { count: number; digest: string }>;
  replication: { peers: { name: string; connected: boolean }[]; counters?: Record<string, number> };
}
export async function status(url: string): Promise<Status> {
  return (await (await fetch(`${url}/status`, { signal: AbortSignal.timeout(5000) })).json()) as Status;
}

/** The last lines of every node's (and broker's) log, for failure messages. */
export function logsOf(c: Cluster, lines = 15): string {
  return [...c.nodes.map((n) => n.logFile), ...c.natsServers.map((s) => s.logFile)]
    .map((f) => {
      try {
        return `--- ${f}\n${readFileSync(f, 'utf8').split('\n').slice(-lines).join('\n')}`;
      } catch {
        return `--- ${f} (unreadable)`;
      }
    })
    .join('\n');
}

export interface Converged {
  /** ms from the call until every node showed the same tables with every peer link up. */
  readonly convergeMs: number;
  /** Acknowledged ids missing on some node (must be 0). */
  readonly lost: number;
  /** Ids that must be absent (deleted) but are present on some node (must be 0). */
  readonly resurrected: number;
}

/**
 * The end of every scenario: waits until every node shows the same tables (counts and
 * digests) with every peer link up, then reads every acknowledged id from every node
 * and checks that every id in `absent` is gone everywhere. Asserts; returns what it saw.
 */
export async function checkConverged(
  c: Cluster,
  o: { acked: readonly string[]; absent?: readonly string[]; table?: string; timeoutMs?: number; token?: string },
): Promise<Converged> {
  const table = o.table ?? 'items';
  const t0 = Date.now();
  const deadline = t0 + (o.timeoutMs ?? 60_000);
  let seen: string[] = [];
  for (;;) {
    try {
      const s = await Promise.all(c.nodes.map((n) => status(n.url)));
      seen = s.map((x) => JSON.stringify(x.tables));
      const linksUp = s.every((x) => x.replication.peers.every((p) => p.connected));
      if (new Set(seen).size === 1 && linksUp && (s[0]?.tables[table]?.count ?? 0) >= o.acked.length - (o.absent?.length ?? 0)) break;
    } catch {
      // a node is still starting
    }
    if (Date.now() > deadline) {
      // What each node's transport says of its peers: which link or consumer stalled.
      const peers = await Promise.all(
        c.nodes.map(async (n) => `${n.name}: ${JSON.stringify(await fetch(`${n.url}/status`).then(async (r) => ((await r.json()) as { cursors: unknown; replication: unknown })).then((s) => ({ cursors: s.cursors, replication: s.replication })).catch((e: Error) => e.message))}`),
      );
      throw new Error(`no convergence within ${o.timeoutMs ?? 60_000} ms:\n${seen.join('\n')}\n${peers.join('\n')}\n${logsOf(c)}`);
    }
    await sleep(200);
  }
  const convergeMs = Date.now() - t0;
  const absent = new Set(o.absent ?? []);
  const want = o.acked.filter((id) => !absent.has(id));
  let lost = 0;
  let resurrected = 0;
  const missingOn: Record<string, string[]> = {};
  for (const node of c.nodes) {
    const check = async (ids: readonly string[], expected: number) => {
      const wrong: string[] = [];
      for (let i = 0; i < ids.length; i += 64) {
        const got = await Promise.all(ids.slice(i, i + 64).map((id) => fetch(`${node.url}/${table}/${encodeURIComponent(id)}`, o.token ? { headers: { authorization: `Bearer ${o.token}` } } : {}).then(async (r) => (await r.arrayBuffer(), [id, r.status] as const))));
        for (const [id, st] of got) if (st !== expected) wrong.push(id);
      }
      return wrong;
    };
    const missing = await check(want, 200);
    const back = await check([...absent], 404);
    lost += missing.length;
    resurrected += back.length;
    if (missing.length) missingOn[node.name] = missing.slice(0, 10);
  }
  expect(lost, `acknowledged writes missing: ${JSON.stringify(missingOn)}\n${logsOf(c)}`).toBe(0);
  expect(resurrected, 'deleted records came back').toBe(0);
  return { convergeMs, lost, resurrected };
}

// ------------------------------------------------------------------ memory

/** Resident set size of a process now, bytes (from /proc). */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples a node's RSS (from /proc) and V8 heap (from /metrics) until stopped; returns the peaks. */
export function sampleMemory(c: Cluster, index: number, everyMs = 200): { stop(): { peakRss: number; peakHeap: number } } {
  let peakRss = 0;
  let peakHeap = 0;
  let busy = false;
  const timer = setInterval(() => {
    const node = c.nodes[index];
    if (!node || busy) return;
    peakRss = Math.max(peakRss, rssOf(node.pid));
    busy = true;
    fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.text())
      .then((t) => {
        const m = /^nodejs_heap_size_used_bytes (\d+)$/m.exec(t);
        if (m) peakHeap = Math.max(peakHeap, Number(m[1]));
      })
      .catch(() => {})
      .finally(() => (busy = false));
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return { peakRss, peakHeap };
    },
  };
}

// ------------------------------------------------------------------ results

export interface ScenarioResult {
  readonly scenario: string;
  readonly transport: string;
  readonly acked: number;
  readonly lost: number;
  readonly convergeMs: number;
  /** Peak RSS of the nodes during the scenario, MiB. */
  readonly peakRssMiB: number;
  readonly note?: string;
  readonly seed: number;
}

/** Appends a passed scenario's figures to results/faults.jsonl (docs/reliability.md is built from it). */
export function recordResult(r: ScenarioResult): void {
  mkdirSync(dirname(RESULTS), { recursive: true });
  appendFileSync(RESULTS, `${JSON.stringify({ ...r, at: new Date().toISOString() })}\n`);
}

/** Peak RSS (VmHWM) of every node process now running, MiB. */
export function peakRssMiB(c: Cluster): number {
  let peak = 0;
  for (const n of c.nodes) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${n.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      // not running
    }
  }
  return Math.round(peak);
}

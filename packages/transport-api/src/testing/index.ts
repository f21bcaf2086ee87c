import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransportStateError } from '../errors.js';
import { ownWriteAge } from '../lag.js';
import { whenPeersConnected } from '../ready.js';
import type { Cursors, LocalNode, LogEntry, RecordValue, ReplicationTransport } from '../types.js';
import { refusingNode, type RefusingNode } from './refusing.js';

export { refusingNode, type RefusingNode } from './refusing.js';

/** One node of a cluster under test: its transport and a handle on its store. */
export interface SuiteNode {
  readonly name: string;
  readonly transport: ReplicationTransport;
  put(table: string, value: RecordValue): Promise<{ readonly seq: number }>;
  delete(table: string, id: string): Promise<unknown>;
  get(table: string, id: string): RecordValue | undefined;
  /** Per-table count and digest. */
  tables(): Record<string, { readonly count: number; readonly digest: string }>;
  cursors(): Cursors;
  /** The newest seq of this node's log. */
  lastSeq(): number;
  /** The seq of an origin's entry in this node's log (undefined when not held). */
  seqOf(origin: string, originSeq: number): number | undefined;
  readLog(fromSeq: number, limit: number): LogEntry[];
}

/** What the suite needs of a store; `@replica/storage`'s Store fits it. */
export type SuiteStore = Omit<SuiteNode, 'transport'>;

/** A suite node over a store and its transport (the store's methods, bound). */
export function suiteNode<S extends SuiteStore, T extends ReplicationTransport>(store: S, transport: T): SuiteNode & { store: S; transport: T } {
  return {
    name: store.name,
    store,
    transport,
    put: (table, value) => store.put(table, value),
    delete: (table, id) => store.delete(table, id),
    get: (table, id) => store.get(table, id),
    tables: () => store.tables(),
    cursors: () => store.cursors(),
    lastSeq: () => store.lastSeq(),
    seqOf: (origin, originSeq) => store.seqOf(origin, originSeq),
    readLog: (from, limit) => store.readLog(from, limit),
  };
}

/** A suite node whose store the cluster helper can start a transport on and close. */
export type ClosableNode = SuiteNode & { readonly store: LocalNode & { close(): Promise<void> } };

/**
 * Starts the transports of `make(0)…make(n-1)` one after the other and returns the
 * cluster operations the suite uses: stop and restart a node from its data, wipe its
 * data, tear everything down (also when a start fails). `dataDir(i)` is node i's
 * directory; `cleanup` runs last (remove files, stop helper processes).
 */
export async function startSuiteCluster<N extends ClosableNode>(o: {
  readonly size: number;
  readonly make: (i: number) => N;
  readonly dataDir: (i: number) => string;
  readonly cleanup: () => Promise<void>;
}): Promise<SuiteCluster & { readonly nodes: N[] }> {
  const { rmSync } = await import('node:fs');
  const nodes = Array.from({ length: o.size }, (_, i) => o.make(i));
  // Each transport sees its store through a gate that can refuse writes like a full disk.
  const gates: RefusingNode[] = nodes.map((n) => refusingNode(n.store));
  let down = false;
  const cluster = {
    nodes,
    refuseWrites(i: number) {
      const gate = gates[i] as RefusingNode;
      const release = gate.refuse();
      return {
        get refused() {
          return gate.refused;
        },
        release,
      };
    },
    async stopNode(i: number) {
      const n = nodes[i] as N;
      await n.transport.stop();
      await n.store.close();
    },
    async startNode(i: number) {
      const n = o.make(i);
      nodes[i] = n;
      gates[i] = refusingNode(n.store);
      await n.transport.start((gates[i] as RefusingNode).node);
    },
    async wipeNode(i: number) {
      rmSync(o.dataDir(i), { recursive: true, force: true });
    },
    async teardown() {
      if (down) return;
      down = true;
      await Promise.all(nodes.map((n) => n.transport.stop()));
      await Promise.all(nodes.map((n) => n.store.close()));
      await o.cleanup();
    },
  };
  try {
    for (const [i, n] of nodes.entries()) await n.transport.start((gates[i] as RefusingNode).node);
  } catch (err) {
    await cluster.teardown();
    throw err;
  }
  return cluster;
}

/** A running cluster; every node's transport is started and its peers are configured. */
export interface SuiteCluster {
  readonly nodes: readonly SuiteNode[];
  /** Stops node i's transport and closes its store, keeping its data. */
  stopNode(i: number): Promise<void>;
  /** Reopens node i from its data and starts a fresh transport for it; replaces nodes[i]. */
  startNode(i: number): Promise<void>;
  /** Deletes node i's data while it is stopped (a node that lost its disk). Needed by capability `wipe`. */
  wipeNode?(i: number): Promise<void>;
  /**
   * Makes node i's store refuse replicated writes as a full disk does (`StorageFullError`,
   * see {@link refusingNode}) until `release()`; `refused` counts the writes it refused. Needed by capability `refuse`.
   */
  refuseWrites?(i: number): { readonly refused: number; release(): void };
  /** Stops everything and removes every file and process the setup made. Must not throw if already torn down. */
  teardown(): Promise<void>;
}

export interface TransportSuiteOptions {
  /** Shown in test names. */
  readonly name: string;
  /** Starts a cluster of `size` nodes (2 to 3). */
  setup(size: number): Promise<SuiteCluster>;
  readonly capabilities?: {
    /** `waitForReplicas` is implemented. */
    readonly confirm?: boolean;
    /** The cluster implements `wipeNode`. */
    readonly wipe?: boolean;
    /** The cluster implements `refuseWrites` (`startSuiteCluster` does). */
    readonly refuse?: boolean;
  };
  /** How long convergence may take in one test. Default 20 s. */
  readonly convergeTimeoutMs?: number;
}

/** Polls `check` every 20 ms until it returns true; fails with `describe()` after `timeoutMs`. */
export async function eventually(check: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const digestsOf = (nodes: readonly SuiteNode[]) => nodes.map((n) => JSON.stringify(n.tables()));

/**
 * Whether a node's log reader has caught up with its committed data: LMDB makes a
 * commit visible to readers (tables, cursors) a moment before the store's own
 * bookkeeping (lastSeq, readLog) learns of it.
 */
const logSettled = (n: SuiteNode) =>
  Object.entries(n.cursors()).every(([origin, c]) => c === 0 || (n.seqOf(origin, c) ?? 0) <= n.lastSeq());

/** Waits until every node holds the same tables, counts and digests, and its log shows it. */
export async function converged(nodes: readonly SuiteNode[], timeoutMs: number): Promise<void> {
  await eventually(
    () => new Set(digestsOf(nodes)).size === 1 && nodes.every(logSettled),
    timeoutMs,
    () => digestsOf(nodes).map((d, i) => `${nodes[i]?.name}: ${d}`).join('\n'),
  );
}

/** Entries of each origin in a node's log, checked to be contiguous and unique. */
function originRuns(node: SuiteNode): Map<string, number[]> {
  const runs = new Map<string, number[]>();
  for (let from = 1; ; ) {
    const batch = node.readLog(from, 1000);
    if (batch.length === 0) break;
    for (const e of batch) {
      const run = runs.get(e.origin) ?? [];
      run.push(e.originSeq);
      runs.set(e.origin, run);
    }
    from = (batch.at(-1) as LogEntry).seq + 1;
  }
  return runs;
}

function expectContiguousLog(node: SuiteNode): void {
  for (const [origin, run] of originRuns(node)) {
    const expected = Array.from({ length: run.length }, (_, i) => (run[0] as number) + i);
    expect(run, `${node.name}'s log of origin ${origin} is contiguous, without duplicates`).toEqual(expected);
  }
}

/** Leaked handles: sockets, servers and timers present after teardown that were not there before. */
function handleCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) {
    if (/TCP|TLS|Pipe|Timeout|Immediate|UDP/.test(r)) counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}

/**
 * The compliance suite every ReplicationTransport passes. Call it from a transport's
 * `test/compliance.test.ts` with a setup that starts real processes where the
 * transport needs them.
 */
export function runTransportSuite(opts: TransportSuiteOptions): void {
  const timeout = opts.convergeTimeoutMs ?? 20_000;
  const caps = opts.capabilities ?? {};

  describe(`ReplicationTransport compliance: ${opts.name}`, () => {
    let cluster: SuiteCluster | undefined;
    const start = async (size: number) => (cluster = await opts.setup(size));
    beforeEach(() => {
      cluster = undefined;
    });
    afterEach(async () => {
      await cluster?.teardown();
    });

    it('replicates every write of every node to every other node', async () => {
      const { nodes } = await start(3);
      await Promise.all(
        nodes.map((n) => Promise.all(Array.from({ length: 40 }, (_, i) => n.put('items', { id: `${n.name}-${i}`, i })))),
      );
      await converged(nodes, timeout);
      for (const n of nodes) expect(n.tables().items?.count).toBe(120);
      expect(nodes[2]?.get('items', `${nodes[0]?.name}-7`)).toEqual({ id: `${nodes[0]?.name}-7`, i: 7 });
    });

    it('applies the writes of one origin in origin order', async () => {
      const { nodes } = await start(2);
      const [a, b] = nodes as [SuiteNode, SuiteNode];
      for (let i = 0; i < 60; i++) await a.put('counter', { id: 'c', i });
      await converged(nodes, timeout);
      expect(b.get('counter', 'c')).toEqual({ id: 'c', i: 59 });
      expect(originRuns(b).get(a.name)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    });

    it('converges when several nodes write the same ids at once (last write wins)', async () => {
      const { nodes } = await start(3);
      await Promise.all(
        nodes.map((n) =>
          Promise.all(Array.from({ length: 30 }, (_, i) => n.put('shared', { id: `k${i % 10}`, by: n.name, i }))),
        ),
      );
      await converged(nodes, timeout);
      for (let k = 0; k < 10; k++) {
        const values = nodes.map((n) => JSON.stringify(n.get('shared', `k${k}`)));
        expect(new Set(values).size).toBe(1);
      }
    });

    it('replicates deletes as tombstones', async () => {
      const { nodes } = await start(2);
      const [a, b] = nodes as [SuiteNode, SuiteNode];
      await Promise.all(Array.from({ length: 10 }, (_, i) => a.put('t', { id: `k${i}` })));
      await converged(nodes, timeout);
      await b.delete('t', 'k3');
      await a.delete('t', 'k4');
      await converged(nodes, timeout);
      for (const n of nodes) {
        expect(n.get('t', 'k3')).toBeUndefined();
        expect(n.get('t', 'k4')).toBeUndefined();
        expect(n.tables().t?.count).toBe(8);
      }
    });

    it('a restarted node resumes from its cursor: nothing lost, nothing applied twice', async () => {
      const c = await start(3);
      await Promise.all(c.nodes.map((n) => n.put('t', { id: `before-${n.name}` })));
      await converged(c.nodes, timeout);
      await c.stopNode(2);
      const live = c.nodes.slice(0, 2);
      await Promise.all(live.map((n) => Promise.all(Array.from({ length: 25 }, (_, i) => n.put('t', { id: `during-${n.name}-${i}` })))));
      await c.startNode(2);
      await c.nodes[2]?.put('t', { id: 'after-restart' });
      await converged(c.nodes, timeout);
      expect(c.nodes[2]?.tables().t?.count).toBe(3 + 50 + 1);
      for (const n of c.nodes) expectContiguousLog(n);
    });

    it.skipIf(!caps.wipe)('a node that lost its disk gets its own and its peers’ writes back and continues after them', async () => {
      const c = await start(2);
      await Promise.all(Array.from({ length: 10 }, (_, i) => c.nodes[0]?.put('t', { id: `k${i}` })));
      await Promise.all(Array.from({ length: 5 }, (_, i) => c.nodes[1]?.put('t', { id: `p${i}` })));
      await converged(c.nodes, timeout);
      await c.stopNode(0);
      await c.wipeNode?.(0);
      await c.startNode(0);
      const [a, b] = c.nodes as [SuiteNode, SuiteNode];
      await eventually(() => a.tables().t?.count === 15, timeout, () => JSON.stringify(a.tables()));
      expect(a.cursors()[a.name]).toBe(10);
      expect(a.cursors()[b.name]).toBe(5);
      await a.put('t', { id: 'after-wipe' });
      await converged(c.nodes, timeout);
      expect(b.get('t', 'after-wipe')).toEqual({ id: 'after-wipe' });
    });

    it.skipIf(!caps.refuse)('a node whose store refuses writes (a full disk) holds the stream back, confirms nothing it did not apply, and catches up once it takes writes again', async () => {
      const c = await start(2);
      const [a, b] = c.nodes as [SuiteNode, SuiteNode];
      await a.put('t', { id: 'before' });
      await converged(c.nodes, timeout);
      const full = (c.refuseWrites as NonNullable<SuiteCluster['refuseWrites']>)(1);
      await Promise.all(Array.from({ length: 60 }, (_, i) => a.put('t', { id: `held-${i}` })));
      // b's transport tried and was refused; from then on it applies and confirms nothing
      await eventually(() => full.refused > 0, timeout, () => 'b was never refused a write');
      const refused = full.refused;
      await new Promise((r) => setTimeout(r, 1000));
      expect(full.refused, 'it waits for the store instead of retrying').toBe(refused);
      expect(b.tables().t?.count, 'nothing applied while refusing').toBe(1);
      expect(a.transport.status().peers.find((p) => p.name === b.name)?.lagEntries, 'nothing confirmed while refusing').toBeGreaterThanOrEqual(60);
      // the transport is not stuck: it still runs and takes this node's own writes out
      await b.put('t', { id: 'from-b' });
      full.release();
      await a.put('t', { id: 'after' });
      await converged(c.nodes, timeout);
      expect(b.tables().t?.count).toBe(63);
      expectContiguousLog(b);
      await eventually(() => a.transport.status().peers.every((p) => p.lagEntries === 0), timeout, () => JSON.stringify(a.transport.status().peers));
    });

    it('status() lists every peer and reaches zero lag', async () => {
      const { nodes } = await start(3);
      const [a] = nodes as [SuiteNode];
      expect(a.transport.status().started).toBe(true);
      expect(a.transport.state).toBe('started');
      await Promise.all(Array.from({ length: 20 }, (_, i) => a.put('t', { id: `k${i}` })));
      await converged(nodes, timeout);
      await eventually(
        () => {
          const peers = a.transport.status().peers;
          return peers.length === nodes.length - 1 && peers.every((p) => p.connected && p.lagEntries === 0);
        },
        timeout,
        () => JSON.stringify(a.transport.status()),
      );
      const names = a.transport.status().peers.map((p) => p.name).sort();
      expect(names).toEqual(nodes.slice(1).map((n) => n.name).sort());
      expect([...a.transport.peerNames()].sort()).toEqual(names);
      for (const p of a.transport.status().peers) expect(p.ackedSeq).toBeGreaterThanOrEqual(20);
    });

    it('whenPeersConnected resolves ready once every peer is connected, and rejects once the transport stopped', async () => {
      const { nodes } = await start(3);
      const [a, b] = nodes as [SuiteNode, SuiteNode];
      const r = await whenPeersConnected(a.transport, { timeoutMs: timeout, peers: nodes.slice(1).map((n) => n.name) });
      expect(r).toEqual({ ready: true, connected: expect.arrayContaining(nodes.slice(1).map((n) => n.name)), waiting: [] });
      expect(r.connected).toHaveLength(nodes.length - 1);
      await b.transport.stop();
      await expect(whenPeersConnected(b.transport, { timeoutMs: 1000 })).rejects.toThrow(/stopped/);
    });

    it('status() means the same on every transport: what each peer confirmed of this node, seen from this node', async () => {
      const c = await start(3);
      const [a, b, gone] = c.nodes as [SuiteNode, SuiteNode, SuiteNode];
      // Every node writes, so each log holds other origins too.
      await Promise.all(c.nodes.map((n) => Promise.all(Array.from({ length: 10 }, (_, i) => n.put('t', { id: `${n.name}-${i}` })))));
      await converged(c.nodes, timeout);
      const own = () => a.cursors()[a.name] ?? 0;
      const peer = (name: string) => a.transport.status().peers.find((p) => p.name === name);
      const caughtUp = (name: string) => {
        const p = peer(name);
        return p !== undefined && p.ackedSeq === a.lastSeq() && p.lagEntries === 0 && p.lagMs === 0 && p.appliedThrough[a.name] === own();
      };
      await eventually(() => caughtUp(b.name) && caughtUp(gone.name), timeout, () => JSON.stringify(a.transport.status()));
      // What flow control reads: every live peer, with how many of this node's own writes it confirmed.
      const live = (name: string) => a.transport.liveConfirmations().find((p) => p.name === name);
      await eventually(() => live(b.name)?.ownApplied === own() && live(gone.name)?.ownApplied === own(), timeout, () => JSON.stringify(a.transport.liveConfirmations()));
      expect(a.transport.liveConfirmations().map((p) => p.name).sort()).toEqual([b.name, gone.name].sort());
      expect(ownWriteAge(a, own(), own())).toBe(0);

      // A peer that is away confirms nothing more: its lag is this node's writes it lacks.
      const ackedBefore = peer(gone.name)?.ackedSeq ?? 0;
      await c.stopNode(2);
      await Promise.all(Array.from({ length: 5 }, (_, i) => a.put('t', { id: `while-away-${i}` })));
      await eventually(() => caughtUp(b.name), timeout, () => JSON.stringify(peer(b.name)));
      // Lag age is measured from the entries' write time: let some time pass (one clock here).
      await new Promise((r) => setTimeout(r, 40));
      const away = peer(gone.name);
      expect(away, 'a stopped peer stays listed').toBeDefined();
      const last = a.lastSeq();
      expect(away?.ackedSeq).toBe(ackedBefore);
      expect(away?.ackedSeq).toBeLessThan(last);
      expect(away?.lagEntries).toBe(last - (away?.ackedSeq ?? 0));
      expect(away?.lagEntries).toBeGreaterThanOrEqual(5);
      expect(away?.lagMs).toBeGreaterThanOrEqual(30);
      expect(away?.appliedThrough[a.name]).toBe(own() - 5);
      // A live peer that confirmed everything holds nothing back; one that is away is either
      // not listed (known to be down) or listed with what it confirmed, and the age of the
      // oldest own write it lacks is what flow control compares with its target.
      await eventually(() => live(b.name)?.ownApplied === own(), timeout, () => JSON.stringify(a.transport.liveConfirmations()));
      const awayLive = live(gone.name);
      if (awayLive) {
        expect(awayLive.ownApplied).toBe(own() - 5);
        expect(ownWriteAge(a, own(), awayLive.ownApplied)).toBeGreaterThanOrEqual(30);
      }
      expect(ownWriteAge(a, own(), own() - 5)).toBeGreaterThanOrEqual(30);
      for (const p of a.transport.status().peers) {
        for (const [k, v] of [...Object.entries(p.counters), ...Object.entries(p.gauges)]) {
          expect(Number.isFinite(v), `${p.name} ${k} is a number`).toBe(true);
        }
      }
    });

    it.skipIf(!caps.confirm)('waitForReplicas confirms applied writes and reports a shortfall on timeout', async () => {
      const c = await start(3);
      const a = c.nodes[0] as SuiteNode;
      const wait = a.transport.waitForReplicas?.bind(a.transport);
      if (!wait) throw new Error('capability confirm is set but waitForReplicas is missing');
      const w = await a.put('t', { id: 'confirmed' });
      expect(await wait(w.seq, 2, timeout)).toBe(2);
      await c.stopNode(2);
      const w2 = await a.put('t', { id: 'one-peer-down' });
      const t0 = Date.now();
      expect(await wait(w2.seq, 2, 300)).toBe(1);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    });

    it('stop() is idempotent, releases every socket and timer, and a stopped transport cannot restart', async () => {
      const before = handleCounts();
      const c = await start(2);
      await c.nodes[0]?.put('t', { id: 'x' });
      await converged(c.nodes, timeout);
      const transport = c.nodes[0]?.transport as ReplicationTransport;
      await c.teardown();
      await transport.stop();
      await new Promise((r) => setTimeout(r, 50));
      const after = handleCounts();
      for (const [kind, n] of after) {
        expect(n, `${kind} handles left after teardown`).toBeLessThanOrEqual(before.get(kind) ?? 0);
      }
      expect(transport.status().started).toBe(false);
      expect(transport.state).toBe('stopped');
      await expect(transport.start({} as never)).rejects.toBeInstanceOf(TransportStateError);
    });
  });
}
export { fuzzParameters, type FuzzParameters } from './fuzz.js';

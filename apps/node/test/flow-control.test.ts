import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '@replica/storage';
import type { LiveConfirmation } from '@replica/transport-api';
import { FlowControl, FlowState } from '../src/flow-control.js';
import { ReplicationLagError, UnavailableError } from '../src/errors.js';
import { tempDir } from './helpers.js';

// The gate's decisions, on a real store whose clock the test sets (so versions, and the
// lag measured from them, are exact) and a transport that reports whatever the test says
// its live peers confirmed. No timers: each step calls measure(), as the poll would.
describe('FlowControl', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function setup(given: { targetMs: number; hardMs: number } | 'off' = { targetMs: 100, hardMs: 400 }) {
    const settings = given === 'off' ? undefined : given;
    const dir = tempDir('replica-flow-');
    let clock = 1_000_000;
    const store = Store.open({ path: dir.path, nodeName: 'a', pruneIntervalMs: 0, wallClock: () => clock });
    let live: LiveConfirmation[] = [];
    const waited: number[] = [];
    const refused: string[] = [];
    const flow = new FlowControl(store, { liveConfirmations: () => live }, settings, {
      now: () => clock,
      pollMs: 0,
      observer: { flowWaited: (s) => void waited.push(s), flowRefused: (r) => void refused.push(r) },
    });
    cleanups.push(async () => {
      flow.close();
      await store.close();
      dir.remove();
    });
    let n = 0;
    return {
      store,
      flow,
      waited,
      refused,
      /** This node writes once; resolves with its own write count. */
      write: async () => (await store.put('t', { id: `k${n++}` }), store.cursors()['a'] ?? 0),
      advance: (ms: number) => void (clock += ms),
      now: () => clock,
      peers: (p: LiveConfirmation[]) => void (live = p),
      /** admit() as a settled-or-not record, so a test can see that a write still waits. */
      admit: () => {
        const r: { done: boolean; error?: unknown } = { done: false };
        const p = flow.admit();
        if (p === undefined) r.done = true;
        else p.then(() => void (r.done = true), (e: unknown) => void ((r.done = true), (r.error = e)));
        return r;
      },
    };
  }

  const settled = () => new Promise((r) => setImmediate(r));

  it('is off without settings: never waits, whatever the peers lag', async () => {
    const t = setup('off');
    await t.write();
    t.peers([{ name: 'b', ownApplied: 0 }]);
    t.advance(10_000);
    t.flow.measure();
    expect(t.flow.state).toBe(FlowState.off);
    expect(t.flow.admit()).toBeUndefined();
    expect(t.flow.report()).toMatchObject({ state: 'off', targetMs: 0, hardMs: 0, lagMs: 0 });
  });

  it('lets writes through while the peers are within the target, holds them past it, and lets them through once the peer confirms', async () => {
    const t = setup();
    const own = await t.write();
    t.peers([{ name: 'b', ownApplied: 0 }, { name: 'c', ownApplied: own }]);
    t.advance(100);
    t.flow.measure();
    expect(t.flow.state).toBe(FlowState.open);
    expect(t.flow.admit()).toBeUndefined();

    t.advance(1);
    t.flow.measure();
    expect(t.flow.report()).toMatchObject({ state: 'waiting', lagMs: 101, peer: 'b' });
    const w = t.admit();
    t.advance(50);
    t.flow.measure();
    await settled();
    expect(w.done, 'still waiting: b has not confirmed').toBe(false);
    expect(t.flow.report().waiting).toBe(1);

    t.peers([{ name: 'b', ownApplied: own }, { name: 'c', ownApplied: own }]);
    t.flow.measure();
    await settled();
    expect(w).toEqual({ done: true });
    expect(t.flow.state).toBe(FlowState.open);
    expect(t.waited).toEqual([0.05]);
    expect(t.refused).toEqual([]);
  });

  it('measures only its own writes: the oldest one a peer lacks, not the newest', async () => {
    const t = setup();
    const first = await t.write();
    t.advance(300);
    const last = await t.write();
    t.peers([{ name: 'b', ownApplied: first - 1 }]);
    t.flow.measure();
    expect(t.flow.report().peers).toEqual([{ name: 'b', lagMs: 300, counted: false }]);
    t.peers([{ name: 'b', ownApplied: first }]);
    t.advance(20);
    t.flow.measure();
    expect(t.flow.report().peers).toEqual([{ name: 'b', lagMs: 20, counted: true }]);
    t.peers([{ name: 'b', ownApplied: last }]);
    t.flow.measure();
    expect(t.flow.report().peers).toEqual([{ name: 'b', lagMs: 0, counted: true }]);
  });

  it('refuses new writes past the hard limit, and refuses waiting ones when the lag passes it', async () => {
    const t = setup();
    await t.write();
    t.peers([{ name: 'b', ownApplied: 0 }]);
    t.flow.measure(); // b is within the target: it counts
    t.advance(150);
    t.flow.measure();
    const w = t.admit();
    t.advance(251);
    t.flow.measure();
    await settled();
    expect(w.error).toBeInstanceOf(ReplicationLagError);
    expect(w.error).toMatchObject({ code: 'REPLICA_ERR_REPLICATION_LAG', reason: 'hardLimit', peer: 'b', lagMs: 401, limitMs: 400, retryAfterSeconds: 1 });
    expect(t.flow.state).toBe(FlowState.refusing);
    expect(() => t.flow.admit()).toThrow(ReplicationLagError);
    expect(t.refused).toEqual(['hardLimit', 'hardLimit']);
    expect(t.waited).toEqual([0.251]);
  });

  it('refuses a write that waited hard − target while the lag stayed between the two', async () => {
    const t = setup();
    // This node writes every 50 ms; b keeps confirming, just not fast enough: it applies
    // what is 200 ms old, so its oldest missing write is always 150 ms old.
    const writes: { at: number; own: number }[] = [];
    const tick = async () => {
      writes.push({ at: t.now(), own: await t.write() });
      t.advance(50);
      const done = writes.filter((w) => w.at <= t.now() - 200).at(-1)?.own ?? 0;
      t.peers([{ name: 'b', ownApplied: done }]);
      t.flow.measure();
    };
    t.peers([{ name: 'b', ownApplied: 0 }]);
    t.flow.measure();
    for (let i = 0; i < 4; i++) await tick();
    expect(t.flow.report()).toMatchObject({ state: 'waiting', lagMs: 150 });
    const since = t.now();
    const w = t.admit();
    while (t.now() - since < 300) {
      await settled();
      expect(w.done, `waited ${t.now() - since} ms`).toBe(false);
      await tick();
      expect(t.flow.report()).toMatchObject({ state: 'waiting', lagMs: 150 });
    }
    await settled();
    expect(w.error).toBeInstanceOf(ReplicationLagError);
    expect(w.error).toMatchObject({ reason: 'waitedTooLong', limitMs: 300, peer: 'b', lagMs: 150 });
    expect(t.refused).toEqual(['waitedTooLong']);
  });

  it('does not wait for a peer that is not live, and lets waiting writes through when the one behind goes away', async () => {
    const t = setup();
    await t.write();
    t.peers([{ name: 'b', ownApplied: 0 }]);
    t.flow.measure();
    t.advance(200);
    t.flow.measure();
    const w = t.admit();
    t.peers([]);
    t.flow.measure();
    await settled();
    expect(w).toEqual({ done: true });
    expect(t.flow.report()).toMatchObject({ state: 'open', lagMs: 0, peers: [] });
  });

  it('counts a peer that comes back with a backlog only once it caught up within the target', async () => {
    const t = setup();
    const own = await t.write();
    t.advance(1000);
    t.peers([{ name: 'b', ownApplied: 0 }]);
    t.flow.measure();
    expect(t.flow.report()).toMatchObject({ state: 'open', peers: [{ name: 'b', lagMs: 1000, counted: false }] });
    expect(t.flow.admit()).toBeUndefined();
    t.peers([{ name: 'b', ownApplied: own }]);
    t.flow.measure();
    const next = await t.write();
    t.advance(101);
    t.flow.measure();
    expect(t.flow.report()).toMatchObject({ state: 'waiting', peer: 'b', peers: [{ name: 'b', lagMs: 101, counted: true }] });
    // It goes away and comes back still behind: not counted again until it caught up.
    t.peers([]);
    t.flow.measure();
    t.peers([{ name: 'b', ownApplied: own }]);
    t.advance(50);
    t.flow.measure();
    expect(t.flow.report()).toMatchObject({ state: 'open', peers: [{ name: 'b', counted: false }] });
    t.peers([{ name: 'b', ownApplied: next }]);
    t.flow.measure();
    expect(t.flow.report().peers).toEqual([{ name: 'b', lagMs: 0, counted: true }]);
  });

  it('refuses the writes still waiting when the node shuts down', async () => {
    const t = setup();
    await t.write();
    t.peers([{ name: 'b', ownApplied: 0 }]);
    t.flow.measure();
    t.advance(200);
    t.flow.measure();
    const w = t.admit();
    t.flow.close();
    await settled();
    expect(w.error).toBeInstanceOf(UnavailableError);
  });
});

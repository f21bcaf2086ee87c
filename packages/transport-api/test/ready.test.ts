import { describe, expect, it } from 'vitest';
import { whenPeersConnected, type PeerStatus, type ReplicationTransport, type TransportState } from '../src/index.js';

/** A transport whose state and peers' connections the test sets. */
function fake(state: TransportState, peers: Record<string, boolean>): Pick<ReplicationTransport, 'status' | 'state'> & { peers: Record<string, boolean>; state: TransportState } {
  return {
    state,
    peers,
    status() {
      const list: PeerStatus[] = Object.entries(this.peers).map(([name, connected]) => ({ name, connected, ackedSeq: 0, lagEntries: 0, lagMs: 0, appliedThrough: {}, counters: {}, gauges: {} }));
      return { kind: 'fake', started: this.state === 'started', peers: list, counters: {}, gauges: {}, refused: {} };
    },
  };
}

describe('whenPeersConnected', () => {
  it('is ready at once for a started node without peers', async () => {
    expect(await whenPeersConnected(fake('started', {}), { timeoutMs: 1000 })).toEqual({ ready: true, connected: [], waiting: [] });
  });

  it('waits until the last peer connects', async () => {
    const t = fake('started', { n2: true, n3: false });
    setTimeout(() => (t.peers.n3 = true), 120);
    const t0 = Date.now();
    expect(await whenPeersConnected(t, { timeoutMs: 5000, intervalMs: 10 })).toEqual({ ready: true, connected: ['n2', 'n3'], waiting: [] });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
  });

  it('waits for named peers the transport has not learned of yet', async () => {
    const t = fake('started', { n2: true });
    expect(await whenPeersConnected(t, { timeoutMs: 60, intervalMs: 10, peers: ['n2', 'n3'] })).toEqual({ ready: false, connected: ['n2'], waiting: ['n3'] });
    setTimeout(() => (t.peers.n3 = true), 50);
    expect(await whenPeersConnected(t, { timeoutMs: 5000, intervalMs: 10, peers: ['n3'] })).toEqual({ ready: true, connected: ['n2', 'n3'], waiting: [] });
  });

  it('ends at the timeout naming the peers it still waits for', async () => {
    expect(await whenPeersConnected(fake('started', { n2: true, n3: false }), { timeoutMs: 100, intervalMs: 10 })).toEqual({ ready: false, connected: ['n2'], waiting: ['n3'] });
  });

  it('waits for a transport that has not started yet, and is not ready if it never does', async () => {
    expect(await whenPeersConnected(fake('new', {}), { timeoutMs: 80, intervalMs: 10 })).toEqual({ ready: false, connected: [], waiting: [] });
    const t = fake('new', { n2: true });
    setTimeout(() => (t.state = 'started'), 50);
    expect((await whenPeersConnected(t, { timeoutMs: 5000, intervalMs: 10 })).ready).toBe(true);
  });

  it('rejects once the transport stopped, and when its signal aborts', async () => {
    await expect(whenPeersConnected(fake('stopped', {}), { timeoutMs: 1000 })).rejects.toThrow('the transport stopped while waiting for its peers');
    const ac = new AbortController();
    const wait = whenPeersConnected(fake('started', { n2: false }), { timeoutMs: 5000, intervalMs: 10, signal: ac.signal });
    ac.abort(new Error('shutting down'));
    await expect(wait).rejects.toThrow('shutting down');
  });
});

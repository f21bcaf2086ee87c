import { describe, expect, it } from 'vitest';
import {
  Backoff,
  Lifecycle,
  MalformedFrameError,
  SnapshotMerge,
  TlsFailure,
  TransportStateError,
  Wakeup,
  backoffDelay,
  ownWriteAge,
  peerLag,
  classifyTlsError,
  decodeCursors,
  encodeCursors,
  sendSnapshot,
  type Cursors,
  type LocalNode,
  type SnapshotRecord,
} from '../src/index.js';

describe('backoff', () => {
  it('doubles from the minimum up to the cap, jittered within [base/2, base]', () => {
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 100, 1000, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 100, 1000, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect(backoffDelay(10_000, 100, 1000, () => 0.5)).toBe(750); // huge attempt counts do not overflow
  });

  it('counts attempts until reset', () => {
    const b = new Backoff(10, 80, () => 1);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([10, 20, 40, 80, 80]);
    expect(b.attempts).toBe(5);
    b.reset();
    expect(b.next()).toBe(10);
  });
});

describe('Wakeup', () => {
  it('keeps a wake that came while nobody waited', async () => {
    const w = new Wakeup();
    w.wake();
    let done = false;
    void w.wait().then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(true);
  });

  it('wakes a waiter, and a wait with a timeout ends by itself without spending a later wake', async () => {
    const w = new Wakeup();
    const waited = w.wait();
    w.wake();
    await waited; // resolves: the test would time out otherwise
    const t0 = Date.now();
    await w.wait(30);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    w.wake(); // after the timed-out wait: kept for the next one
    let done = false;
    void w.wait().then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(true);
  });
});

describe('Lifecycle', () => {
  it('moves new → started → stopped once, and refuses a second start', () => {
    const l = new Lifecycle('test');
    expect(l.state).toBe('new');
    l.begin();
    expect(l.started).toBe(true);
    expect(() => l.begin()).toThrow(TransportStateError);
    expect(l.end()).toBe(true);
    expect(l.end()).toBe(false);
    expect(l.state).toBe('stopped');
    expect(() => l.begin()).toThrow(/cannot start a transport that is stopped/);
  });

  it('`stopped` resolves at the end, for loops that race it', async () => {
    const l = new Lifecycle('test');
    l.begin();
    let ended = false;
    void l.stopped.then(() => (ended = true));
    await Promise.resolve();
    expect(ended).toBe(false);
    l.end();
    expect(await l.stopped).toBe('stopped');
    expect(ended).toBe(true);
  });

  it('a stop before start has nothing to release', () => {
    const l = new Lifecycle('test');
    expect(l.end()).toBe(false);
    expect(() => l.begin()).toThrow(TransportStateError);
  });

  it('stops on abort, and detaches from the signal once stopped', async () => {
    const l = new Lifecycle('test');
    const ac = new AbortController();
    let stops = 0;
    l.begin();
    l.stopOn(ac.signal, async () => {
      stops++;
      l.end();
    });
    ac.abort();
    expect(stops).toBe(1);
    const again = new Lifecycle('test');
    again.begin();
    const ac2 = new AbortController();
    again.stopOn(ac2.signal, async () => void stops++);
    again.end();
    ac2.abort();
    expect(stops).toBe(1);
  });

  it('an already aborted signal stops the transport', async () => {
    const l = new Lifecycle('test');
    l.begin();
    let stopped = false;
    l.stopOn(AbortSignal.abort(), async () => void (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(true);
  });
});

/** A store stand-in with just what a merge resync uses. */
function fakeNode(records: SnapshotRecord[], cursors: Cursors) {
  const merged: SnapshotRecord[] = [];
  let adopted: Cursors | undefined;
  const node = {
    snapshot: (batchSize: number) => ({
      cursors,
      batches: {
        *[Symbol.iterator]() {
          for (let i = 0; i < records.length; i += batchSize) yield records.slice(i, i + batchSize);
        },
      },
    }),
    mergeSnapshot: async (batch: readonly SnapshotRecord[]) => (merged.push(...batch), batch.length),
    adoptCursors: async (c: Cursors) => void (adopted = c),
  } as unknown as LocalNode;
  return { node, merged, adopted: () => adopted };
}

describe('merge-resync streaming', () => {
  const records: SnapshotRecord[] = Array.from({ length: 5 }, (_, i) => ({ table: 't', id: `k${i}`, version: [i + 1, 0, 'a'] as const, value: { id: `k${i}` } }));

  it('streams begin, batches and end into a merge that adopts the cursors last', async () => {
    const from = fakeNode(records, { a: 5 });
    const to = fakeNode([], {});
    const merge = new SnapshotMerge(to.node);
    const sent = await sendSnapshot(from.node, 2, merge);
    expect(sent).toEqual({ records: 5, complete: true });
    expect(to.merged).toEqual(records);
    expect(to.adopted()).toEqual({ a: 5 });
    expect(merge.received).toEqual({ records: 5, changed: 5 });
  });

  it('a resync cut short sends no end, so the receiver raises no cursor', async () => {
    const from = fakeNode(records, { a: 5 });
    const to = fakeNode([], {});
    let open = true;
    const merge = new SnapshotMerge(to.node);
    const sink = {
      begin: (c: Cursors) => merge.begin(c),
      records: async (b: readonly SnapshotRecord[]) => {
        await merge.records(b);
        open = false; // the connection drops after the first batch
      },
      end: () => merge.end(),
    };
    expect(await sendSnapshot(from.node, 2, sink, () => open)).toEqual({ records: 2, complete: false });
    expect(to.adopted()).toBeUndefined();
  });

  it('refuses records or an end without a beginning', async () => {
    const merge = new SnapshotMerge(fakeNode([], {}).node);
    await expect(merge.records(records)).rejects.toBeInstanceOf(MalformedFrameError);
    await expect(merge.end()).rejects.toBeInstanceOf(MalformedFrameError);
  });

  it('an end that repeats the cursors must repeat them exactly', async () => {
    const to = fakeNode([], {});
    const merge = new SnapshotMerge(to.node);
    merge.begin({ a: 5 });
    await expect(merge.end({ a: 6 })).rejects.toBeInstanceOf(MalformedFrameError);
    expect(to.adopted()).toBeUndefined();
    merge.begin({ a: 5 });
    await merge.end({ a: 5 });
    expect(to.adopted()).toEqual({ a: 5 });
  });
});

describe('cursor codec', () => {
  it('round-trips and refuses what is not a cursor map', () => {
    expect(decodeCursors(encodeCursors({ a: 1, 'n-2': 0 }))).toEqual({ a: 1, 'n-2': 0 });
    for (const bad of [[1], { a: -1 }, { a: 1.5 }, { 'bad name!': 1 }, null, 'x', { a: '1' }]) {
      expect(() => decodeCursors(encodeCursors(bad as never)), JSON.stringify(bad)).toThrow(MalformedFrameError);
    }
    expect(() => decodeCursors(Buffer.from([0xc1]))).toThrow(MalformedFrameError);
  });
});

describe('TLS failure classification', () => {
  it('tells the reasons apart by code, then by message', () => {
    const of = (code: string, message = '') => classifyTlsError({ code, message }).failure;
    expect(of('CERT_HAS_EXPIRED')).toBe(TlsFailure.expired);
    expect(of('ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED')).toBe(TlsFailure.expired);
    expect(of('ERR_TLS_CERT_ALTNAME_INVALID')).toBe(TlsFailure.wrongName);
    expect(of('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')).toBe(TlsFailure.noCertificate);
    expect(of('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')).toBe(TlsFailure.noCertificate);
    expect(of('UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toBe(TlsFailure.untrustedCertificate);
    expect(of('SELF_SIGNED_CERT_IN_CHAIN')).toBe(TlsFailure.untrustedCertificate);
    expect(of('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')).toBe(TlsFailure.untrustedCertificate);
    expect(of('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE')).toBe(TlsFailure.refusedCertificate);
    expect(of('ERR_SSL_WRONG_VERSION_NUMBER')).toBe(TlsFailure.notTls);
    expect(of('ECONNRESET')).toBe(TlsFailure.handshakeFailed);
    expect(of('', 'certificate has expired')).toBe(TlsFailure.expired);
  });

  it('says when the other side refused with an alert, and which', () => {
    expect(classifyTlsError({ code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' })).toEqual({ failure: TlsFailure.untrustedCertificate, byPeer: true, alert: 'unknown ca' });
    expect(classifyTlsError({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }).byPeer).toBe(false);
  });
});

describe('ownWriteAge', () => {
  // A log of 10 entries; this node (a) wrote seqs 3, 6 and 9 (originSeq 1, 2, 3), dated 1000 + seq; the rest came from b.
  const own = new Map([[1, 3], [2, 6], [3, 9]]);
  const node = (pruned: ReadonlySet<number> = new Set(), last = 10) => ({
    name: 'a',
    lastSeq: () => last,
    seqOf: (origin: string, originSeq: number) => (origin === 'a' && !pruned.has(own.get(originSeq) ?? 0) ? own.get(originSeq) : undefined),
    readLog: (from: number) => (from <= 10 && !pruned.has(from) ? [{ seq: from, version: [1000 + from, 0, 'a'] }] : []),
  }) as unknown as LocalNode;

  it('is the age of the own write after the confirmed one, whatever entries of other origins lie before it', () => {
    expect(ownWriteAge(node(), 3, 1, 2000)).toBe(2000 - 1006);
    expect(ownWriteAge(node(), 3, 0, 2000)).toBe(2000 - 1003);
  });

  it('is zero when every own write is confirmed (or more: a peer that holds writes this node lost), or dated after now', () => {
    expect(ownWriteAge(node(), 3, 3, 2000)).toBe(0);
    expect(ownWriteAge(node(), 3, 5, 2000)).toBe(0);
    expect(ownWriteAge(node(), 3, 2, 500)).toBe(0);
    // committed (the cursor shows it) but not yet in what the log reader serves
    expect(ownWriteAge(node(new Set(), 8), 3, 2, 2000)).toBe(0);
  });

  it('is infinite for an unconfirmed own write the log no longer holds', () => {
    expect(ownWriteAge(node(new Set([3])), 3, 0, 2000)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('peerLag', () => {
  const node = (last: number, wallOf: (seq: number) => number) =>
    ({ lastSeq: () => last, readLog: (from: number) => (from <= last ? [{ seq: from, version: [wallOf(from), 0, 'a'] }] : []) }) as unknown as LocalNode;

  it('counts the entries after ackedSeq and the age of the oldest of them', () => {
    expect(peerLag(node(10, (seq) => 1000 + seq), 7, 2000)).toEqual({ lagEntries: 3, lagMs: 992 });
  });

  it('is zero when caught up, when an entry is dated later than now (clock skew), and for a stopped transport', () => {
    expect(peerLag(node(10, () => 0), 10, 2000)).toEqual({ lagEntries: 0, lagMs: 0 });
    expect(peerLag(node(10, () => 5000), 9, 2000)).toEqual({ lagEntries: 1, lagMs: 0 });
    expect(peerLag(undefined, 3, 2000)).toEqual({ lagEntries: 0, lagMs: 0 });
  });
});

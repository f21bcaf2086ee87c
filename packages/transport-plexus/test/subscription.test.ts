import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@replica/transport-api';
import { fuzzParameters } from '@replica/transport-api/testing';
import { markSent, select, selectionOf, startCursors, subscriptionFor } from '../src/subscription.js';

/** A log of this node ('me'): entries of the given origins, numbered per origin. */
function log(origins: readonly string[]): LogEntry[] {
  const next: Record<string, number> = {};
  return origins.map((origin, i) => {
    const originSeq = (next[origin] = (next[origin] ?? 0) + 1);
    return { seq: i + 1, origin, originSeq, table: 't', id: `${origin}-${originSeq}`, version: [i + 1, 0, origin], op: 'put', value: { id: `${origin}-${originSeq}` } };
  });
}

const picked = (entries: readonly LogEntry[]) => entries.map((e) => `${e.origin}:${e.originSeq}`);

describe('subscriptionFor', () => {
  it('excludes this node and the other peers it is connected to', () => {
    const sub = subscriptionFor('n0', { n0: 5, n2: 3 }, ['n2', 'n3'], 5);
    expect(sub).toEqual({ cursors: { n0: 5, n2: 3 }, exclude: ['n0', 'n2', 'n3'], recoverUntil: 0 });
  });

  it('asks for its own writes back only when the peer holds more of them than this node', () => {
    expect(subscriptionFor('n0', { n0: 5 }, [], 4).recoverUntil).toBe(0);
    expect(subscriptionFor('n0', { n0: 5 }, [], 5).recoverUntil).toBe(0);
    expect(subscriptionFor('n0', { n0: 5 }, [], 9).recoverUntil).toBe(9);
    expect(subscriptionFor('n0', {}, [], 2).recoverUntil).toBe(2);
  });
});

describe('startCursors', () => {
  const mine = { me: 10, peer: 7, relayed: 6, excluded: 4 };

  it('streams subscribed origins from the receiver cursors and counts excluded ones as delivered', () => {
    const sel = selectionOf({ cursors: { me: 3, relayed: 2, excluded: 1 }, exclude: ['peer', 'excluded'], recoverUntil: 0 });
    expect(startCursors('peer', sel, mine)).toEqual({ me: 3, peer: 7, relayed: 2, excluded: 4 });
  });

  it('starts the peer own origin from its cursor only when it asked to recover writes', () => {
    const lost = selectionOf({ cursors: { peer: 2 }, exclude: ['peer'], recoverUntil: 7 });
    expect(startCursors('peer', lost, mine)['peer']).toBe(2);
    const fine = selectionOf({ cursors: { peer: 7 }, exclude: ['peer'], recoverUntil: 0 });
    expect(startCursors('peer', fine, mine)['peer']).toBe(7);
  });

  it('an origin the receiver never heard of starts at 0', () => {
    const sel = selectionOf({ cursors: {}, exclude: ['peer'], recoverUntil: 0 });
    expect(startCursors('peer', sel, mine)['relayed']).toBe(0);
  });
});

describe('select', () => {
  it('leaves out excluded origins', () => {
    const sel = selectionOf({ cursors: {}, exclude: ['peer', 'other'], recoverUntil: 0 });
    expect(picked(select('peer', sel, log(['me', 'other', 'me', 'third'])))).toEqual(['me:1', 'me:2', 'third:1']);
  });

  it('sends the peer its own writes only above its cursor and up to recoverUntil', () => {
    const sel = selectionOf({ cursors: { peer: 1 }, exclude: ['peer'], recoverUntil: 3 });
    expect(picked(select('peer', sel, log(['peer', 'peer', 'me', 'peer', 'peer'])))).toEqual(['peer:2', 'me:1', 'peer:3']);
    const none = selectionOf({ cursors: { peer: 1 }, exclude: ['peer'], recoverUntil: 0 });
    expect(picked(select('peer', none, log(['peer', 'peer', 'me'])))).toEqual(['me:1']);
  });

  it('skips what the receiver already has', () => {
    const sel = selectionOf({ cursors: { me: 2 }, exclude: ['peer'], recoverUntil: 0 });
    expect(picked(select('peer', sel, log(['me', 'me', 'me'])))).toEqual(['me:3']);
  });

  it('sends no entry twice on a stream once marked sent, and only rising originSeqs within one read', () => {
    const sel = selectionOf({ cursors: {}, exclude: ['peer'], recoverUntil: 0 });
    const entries = log(['me', 'x', 'me']);
    const first = select('peer', sel, entries);
    expect(picked(first)).toEqual(['me:1', 'x:1', 'me:2']);
    // not marked (the batch was too big and is read again in smaller pieces): selected again
    expect(picked(select('peer', sel, entries.slice(0, 2)))).toEqual(['me:1', 'x:1']);
    markSent(sel, first);
    expect(select('peer', sel, entries)).toEqual([]);
    // a repeated or older entry of an origin in one read (another relay's copy) is dropped
    const [a, b] = log(['y', 'y']) as [LogEntry, LogEntry];
    expect(picked(select('peer', sel, [b, a, b]))).toEqual(['y:2']);
  });

  it('over any log read in any windows: never an excluded origin, never an entry twice, nothing subscribed missed', () => {
    const origin = fc.constantFrom('me', 'peer', 'x', 'y');
    fc.assert(
      fc.property(
        fc.array(origin, { maxLength: 60 }),
        fc.subarray(['x', 'y']),
        fc.nat(5),
        fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1, maxLength: 20 }),
        (origins, excluded, recoverUntil, windows) => {
          const entries = log(origins);
          const sel = selectionOf({ cursors: {}, exclude: ['peer', ...excluded], recoverUntil });
          const out: LogEntry[] = [];
          for (let pos = 0, w = 0; pos < entries.length; w++) {
            const n = windows[w % windows.length] as number;
            const got = select('peer', sel, entries.slice(pos, pos + n));
            markSent(sel, got);
            out.push(...got);
            pos += n;
          }
          const want = entries.filter((e) => (e.origin === 'peer' ? e.originSeq <= recoverUntil : !excluded.includes(e.origin)));
          expect(picked(out)).toEqual(picked(want));
        },
      ),
      fuzzParameters(200, 5000),
    );
  });
});

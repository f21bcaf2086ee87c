import { describe, expect, it } from 'vitest';
import { Histogram, LAG_BUCKETS_MS } from '../src/index.js';

describe('Histogram', () => {
  it('counts a value in the first bucket whose bound is >= it; above all bounds, in the open last one', () => {
    const h = new Histogram([1, 5, 10]);
    for (const v of [0, 1, 1.5, 5, 10, 10.01, 1e9, -3]) h.observe(v);
    expect(h.snapshot()).toEqual({ bounds: [1, 5, 10], counts: [3, 2, 1, 2], count: 8, sum: 0 + 1 + 1.5 + 5 + 10 + 10.01 + 1e9 - 3 });
  });

  it('hands out copies: later observations do not change a snapshot', () => {
    const h = new Histogram([0.5]);
    h.observe(0.1);
    const before = h.snapshot();
    h.observe(2);
    expect(before).toEqual({ bounds: [0.5], counts: [1, 0], count: 1, sum: 0.1 });
    expect(h.snapshot().counts).toEqual([1, 1]);
  });

  it('starts empty, with one open bucket beyond the bounds', () => {
    expect(new Histogram(LAG_BUCKETS_MS).snapshot().counts).toEqual(new Array(LAG_BUCKETS_MS.length + 1).fill(0));
    expect(new Histogram([]).snapshot().counts).toEqual([0]);
  });

  it('refuses bounds that are not finite and strictly ascending', () => {
    expect(() => new Histogram([1, 1])).toThrow(RangeError);
    expect(() => new Histogram([2, 1])).toThrow(RangeError);
    expect(() => new Histogram([1, Number.POSITIVE_INFINITY])).toThrow(RangeError);
    expect(() => new Histogram([Number.NaN])).toThrow(RangeError);
  });
});

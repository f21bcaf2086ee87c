import { describe, expect, it } from 'vitest';
import { PubAckOrder } from '../src/puback-order.js';

describe('PubAck ordering', () => {
  it('counts acknowledgements that arrive in order at once', () => {
    const o = new PubAckOrder();
    o.ack(1, 1, 3);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([1, 3]);
    o.ack(2, 5, 9);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([5, 9]);
  });

  it('counts a run acknowledged ahead of an earlier one only once every earlier own entry is acknowledged', () => {
    const o = new PubAckOrder();
    o.ack(4, 6, 12);
    o.ack(7, 7, 14);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([0, 0]);
    o.ack(1, 2, 5);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([2, 5]); // 3 is still missing
    o.ack(3, 3, 8);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([7, 14]); // 3 closes the hole: 4–7 count too
  });

  it('never moves shippedSeq back', () => {
    const o = new PubAckOrder();
    o.advance(0, 10);
    o.ack(1, 1, 4);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([1, 10]);
  });

  it('continues after entries that need no acknowledgement (held by the stream before, or lost)', () => {
    const o = new PubAckOrder();
    o.advance(20, 0);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([20, 0]);
    o.ack(22, 22, 31); // ahead of 21
    o.ack(21, 21, 30);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([22, 31]);
    o.advance(30, 40);
    o.ack(31, 32, 45);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([32, 45]);
  });

  it('ignores a repeated acknowledgement of what already counts', () => {
    const o = new PubAckOrder();
    o.ack(1, 3, 3);
    o.ack(1, 3, 3); // a retried publish, stored before: a duplicate
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([3, 3]);
    o.ack(4, 4, 4);
    expect([o.publishedOriginSeq, o.shippedSeq]).toEqual([4, 4]);
  });
});

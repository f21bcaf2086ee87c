/**
 * Turns PubAcks, which arrive in any order when many publishes are in flight, into how
 * far the stream holds this node's own entries without a hole: a run of entries counts
 * once every own entry before it is acknowledged too. Pure: no I/O, no clock.
 */
export class PubAckOrder {
  #published = 0;
  #shipped = 0;
  /** Acknowledged runs ahead of an unacknowledged entry: first originSeq → run. */
  readonly #ahead = new Map<number, { readonly last: number; readonly seq: number }>();

  /** The highest own originSeq acknowledged together with every own entry before it. */
  get publishedOriginSeq(): number {
    return this.#published;
  }

  /** The highest local seq that the stream holds, with everything of this node before it. Never decreases. */
  get shippedSeq(): number {
    return this.#shipped;
  }

  /** The stream stored own entries `first`…`last` (origin sequences), the last at local seq `seq`. */
  ack(first: number, last: number, seq: number): void {
    this.#ahead.set(first, { last, seq });
    for (let run = this.#ahead.get(this.#published + 1); run; run = this.#ahead.get(this.#published + 1)) {
      this.#ahead.delete(this.#published + 1);
      this.#published = run.last;
      if (run.seq > this.#shipped) this.#shipped = run.seq;
    }
  }

  /**
   * Own entries up to `through` need no acknowledgement (the stream held them before
   * this process started, or nothing can publish them again): they count as published,
   * and local entries up to `seq` as shipped.
   */
  advance(through: number, seq: number): void {
    this.#published = through;
    if (seq > this.#shipped) this.#shipped = seq;
  }
}

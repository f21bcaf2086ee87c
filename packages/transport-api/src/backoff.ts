/**
 * The delay before retry number `attempt` (0 for the first retry): exponential from
 * `minMs`, capped at `maxMs`, with jitter so that peers that lost each other at the
 * same moment do not retry in step. The delay lies in [base/2, base], where
 * base = min(maxMs, minMs · 2^attempt).
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** Successive {@link backoffDelay}s, until reset() after a success. */
export class Backoff {
  #attempt = 0;

  constructor(
    readonly minMs: number,
    readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Retries since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next retry. */
  next(): number {
    return backoffDelay(this.#attempt++, this.minMs, this.maxMs, this.random);
  }

  reset(): void {
    this.#attempt = 0;
  }
}

import type { NatsContext } from './context.js';
import { OriginConsumer, type ConsumerDeps } from './origin-consumer.js';

/**
 * Finds the other nodes' streams in the NATS cluster and keeps one running
 * {@link OriginConsumer} per stream of a node that was not removed from the cluster. A
 * node is known from the moment its stream is found; it stays listed after stop()
 * (status still describes it), and leaves the list when it is removed.
 */
export class Discovery {
  readonly #consumers = new Map<string, OriginConsumer>();
  /** Removed members: their streams are never consumed as a peer's again. */
  #removed: ReadonlySet<string> = new Set();
  /** This node was removed: it consumes nothing. */
  #selfRemoved = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: NatsContext,
    private readonly deps: Omit<ConsumerDeps, 'origins'>,
  ) {}

  get consumers(): Iterable<OriginConsumer> {
    return this.#consumers.values();
  }

  names(): string[] {
    return [...this.#consumers.keys()];
  }

  has(origin: string): boolean {
    return this.#consumers.has(origin);
  }

  /** Whether a stream of `origin` would be consumed as a peer's but is not yet. */
  lacks(origin: string): boolean {
    return !this.#selfRemoved && !this.#removed.has(origin) && !this.#consumers.has(origin);
  }

  /**
   * From now on, streams of `removed` origins (every stream when `selfRemoved`) are not
   * consumed. Returns the consumers of origins no longer consumed, taken out of the list:
   * the caller drains and retires them.
   */
  exclude(removed: ReadonlySet<string>, selfRemoved: boolean): OriginConsumer[] {
    this.#removed = removed;
    this.#selfRemoved = selfRemoved;
    const taken: OriginConsumer[] = [];
    for (const [origin, c] of this.#consumers) {
      if (!selfRemoved && !removed.has(origin)) continue;
      this.#consumers.delete(origin);
      taken.push(c);
    }
    return taken;
  }

  /** A running consumer of `origin`'s stream outside the peer list (to drain a removed origin's stream). */
  spawn(origin: string): OriginConsumer {
    const c = new OriginConsumer(origin, this.ctx.names.streamOf(origin), this.ctx, { ...this.deps, origins: () => this.#consumers.keys() });
    const loop = c.start();
    if (loop) this.ctx.track(loop);
    return c;
  }

  /** Starts a consumer on each stream found since the last look, and refreshes the others' broker state. */
  async discover(): Promise<void> {
    if (!this.ctx.lifecycle.started || this.#selfRemoved) return;
    for (const { origin, stream } of await this.deps.admin.peerStreams()) {
      if (this.#removed.has(origin) || this.#selfRemoved) continue;
      let c = this.#consumers.get(origin);
      if (!c) {
        c = new OriginConsumer(origin, stream, this.ctx, { ...this.deps, origins: () => this.#consumers.keys() });
        this.#consumers.set(origin, c);
      }
      const loop = c.start();
      if (loop) this.ctx.track(loop);
      else await c.refresh();
    }
  }

  /** Looks again now, without waiting for it; a failure is logged. */
  discoverSoon(): void {
    void this.discover().catch((err: Error) => this.ctx.log.warn({ err: err.message }, 'nats: discovery failed'));
  }

  /** Looks again every `ms` until stop(). */
  every(ms: number): void {
    this.#timer = setInterval(() => this.discoverSoon(), ms);
  }

  stop(): void {
    clearInterval(this.#timer);
    for (const c of this.#consumers.values()) c.stop();
  }
}

import type { NatsContext } from './context.js';
import { OriginConsumer, type ConsumerDeps } from './origin-consumer.js';

/**
 * Finds the other nodes' streams in the NATS cluster and keeps one running
 * {@link OriginConsumer} per stream. A node is known from the moment its stream is
 * found; it stays listed after stop() (status still describes it).
 */
export class Discovery {
  readonly #consumers = new Map<string, OriginConsumer>();
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

  /** Starts a consumer on each stream found since the last look, and refreshes the others' broker state. */
  async discover(): Promise<void> {
    if (!this.ctx.lifecycle.started) return;
    for (const { origin, stream } of await this.deps.admin.peerStreams()) {
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

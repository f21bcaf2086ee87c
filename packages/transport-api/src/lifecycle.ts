import { TransportStateError } from './errors.js';

/** Where a transport is in its life. It only moves forward: new → started → stopped. */
export const TransportState = { new: 'new', started: 'started', stopped: 'stopped' } as const;
export type TransportState = (typeof TransportState)[keyof typeof TransportState];

/**
 * The one state machine every transport shares. A transport starts once: a second
 * start, or a start after stop, is a {@link TransportStateError}. An abort signal given
 * to start() stops the transport; stop() detaches it again, so a stopped transport
 * holds no listener on a signal that outlives it.
 */
export class Lifecycle {
  #state: TransportState = TransportState.new;
  #detach: (() => void) | undefined;
  #resolveStopped: (value: 'stopped') => void = () => {};
  /**
   * Resolves once the transport stops: a loop that awaits something which may not end
   * by itself (a client's iterator, a reply) races it, so stop() can wait for the loop.
   */
  readonly stopped = new Promise<'stopped'>((resolve) => (this.#resolveStopped = resolve));

  constructor(readonly kind: string) {}

  get state(): TransportState {
    return this.#state;
  }

  get started(): boolean {
    return this.#state === TransportState.started;
  }

  /** new → started; throws {@link TransportStateError} in any other state. */
  begin(): void {
    if (this.#state !== TransportState.new) {
      throw new TransportStateError(this.kind, this.#state, `cannot start a transport that is ${this.#state}`);
    }
    this.#state = TransportState.started;
  }

  /** Calls `stop` when `signal` aborts (at once if it already has), until {@link end}. */
  stopOn(signal: AbortSignal | undefined, stop: () => Promise<void>): void {
    if (!signal || !this.started) return;
    const onAbort = () => void stop();
    if (signal.aborted) return queueMicrotask(onAbort);
    signal.addEventListener('abort', onAbort, { once: true });
    this.#detach = () => signal.removeEventListener('abort', onAbort);
  }

  /**
   * → stopped, from any state. Returns true only for the call that stopped a started
   * transport: that caller releases what the transport holds; every other call (a second
   * stop(), a stop() before start()) has nothing to release.
   */
  end(): boolean {
    const was = this.#state;
    this.#state = TransportState.stopped;
    this.#detach?.();
    this.#detach = undefined;
    this.#resolveStopped('stopped');
    return was === TransportState.started;
  }
}

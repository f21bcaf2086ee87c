import { ownWriteAge, silentLogger, type LocalNode, type Logger, type ReplicationTransport } from '@replica/transport-api';
import type { FlowControlSettings } from './config.js';
import { ReplicationLagError, UnavailableError } from './errors.js';

/** Where flow control stands: `off` (no MAX_REPLICATION_LAG_MS), `open`, `waiting` (new writes wait), `refusing` (new writes refused). */
export const FlowState = { off: 'off', open: 'open', waiting: 'waiting', refusing: 'refusing' } as const;
export type FlowState = (typeof FlowState)[keyof typeof FlowState];

/** One live peer as flow control last measured it. */
export interface FlowPeer {
  readonly name: string;
  /** Age in ms of this node's oldest own write the peer has not confirmed (0: caught up). */
  readonly lagMs: number;
  /**
   * Whether its lag holds writes back. A peer that (re)connects with a backlog older than
   * the target counts only once it first came within the target.
   */
  readonly counted: boolean;
}

/** What `/status` and `/metrics` show of flow control. */
export interface FlowReport {
  readonly state: FlowState;
  /** MAX_REPLICATION_LAG_MS and the hard limit; 0 when off. */
  readonly targetMs: number;
  readonly hardMs: number;
  /** The largest lag of a counted peer, in ms: what the state follows. */
  readonly lagMs: number;
  /** The peer with that lag, when it is not 0. */
  readonly peer?: string;
  /** Writes waiting now. */
  readonly waiting: number;
  readonly peers: readonly FlowPeer[];
}

/** Told of every write that waited, and of every refused one. */
export interface FlowObserver {
  flowWaited(seconds: number): void;
  flowRefused(reason: ReplicationLagError['reason']): void;
}

export interface FlowControlOptions {
  /** This node's wall clock, as its store's (versions are dated by it). Default `Date.now`. */
  readonly now?: () => number;
  readonly observer?: FlowObserver;
  /** Where a measurement that failed is logged (the next one tries again). */
  readonly logger?: Logger;
  /** How often the lag is measured; default target/20, from 5 to 50 ms. 0: only by {@link FlowControl.measure} (tests). */
  readonly pollMs?: number;
}

type Measured = Pick<LocalNode, 'name' | 'cursors' | 'lastSeq' | 'seqOf' | 'readLog'> & { readonly closed?: boolean };

interface Waiter {
  readonly since: number;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Keeps every live peer within `targetMs` of this node's own writes, as MongoDB's flow
 * control keeps the majority's lag bounded: new local writes go ahead while the oldest own
 * write that a counted peer has not confirmed is at most `targetMs` old; past it they wait
 * until it is back within the target, and past `hardMs` (or after waiting `hardMs −
 * targetMs`) they are refused with {@link ReplicationLagError}, writing nothing.
 *
 * The lag is measured every `pollMs` from the transport's
 * {@link ReplicationTransport.liveConfirmations} (peers that are down or disconnected are
 * not listed, so they hold nothing back) and the shared {@link ownWriteAge}; waiting writes
 * are let through, or refused, at the measurement that decides it. A write never waits
 * on a timer of its own.
 */
export class FlowControl {
  readonly #settings: FlowControlSettings | undefined;
  readonly #now: () => number;
  readonly #observer: FlowObserver | undefined;
  readonly #counted = new Set<string>();
  readonly #waiters = new Set<Waiter>();
  #state: FlowState;
  #lag = 0;
  #peer: string | undefined;
  #peers: readonly FlowPeer[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly store: Measured,
    private readonly transport: Pick<ReplicationTransport, 'liveConfirmations'> | undefined,
    settings: FlowControlSettings | undefined,
    opts: FlowControlOptions = {},
  ) {
    this.#settings = settings;
    this.#now = opts.now ?? Date.now;
    this.#observer = opts.observer;
    this.#state = settings ? FlowState.open : FlowState.off;
    if (!settings || !transport) return;
    const pollMs = opts.pollMs ?? Math.min(50, Math.max(5, Math.round(settings.targetMs / 20)));
    const logger = opts.logger ?? silentLogger;
    if (pollMs > 0) {
      this.#timer = setInterval(() => {
        try {
          this.measure();
        } catch (err) {
          logger.warn({ err }, 'flow control: measuring the replication lag failed; trying again');
        }
      }, pollMs);
      this.#timer.unref();
    }
  }

  get state(): FlowState {
    return this.#state;
  }

  /** Seconds a refused client is told to wait (`Retry-After`): the target, rounded up, at least 1. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.#settings?.targetMs ?? 0) / 1000));
  }

  /**
   * Call before a local write. Undefined: go ahead now. A promise: wait for it, then go
   * ahead; it rejects with {@link ReplicationLagError} (or {@link UnavailableError} when
   * the node shuts down) if the write must not be made. Throws at once when refusing.
   */
  admit(): Promise<void> | undefined {
    if (this.#state === FlowState.off || this.#state === FlowState.open) return undefined;
    if (this.#state === FlowState.refusing) throw this.#refusal('hardLimit', this.#settings?.hardMs ?? 0);
    return new Promise<void>((resolve, reject) => {
      this.#waiters.add({ since: this.#now(), resolve, reject });
    });
  }

  /** Measures every live peer's lag and lets waiting writes through, or refuses them, accordingly. */
  measure(): void {
    const settings = this.#settings;
    if (!settings || this.#closed || this.store.closed) return;
    const live = this.transport?.liveConfirmations() ?? [];
    const now = this.#now();
    const own = live.length > 0 ? (this.store.cursors()[this.store.name] ?? 0) : 0;
    const seen = new Set<string>();
    const peers: FlowPeer[] = [];
    let lag = 0;
    let peer: string | undefined;
    for (const p of live) {
      seen.add(p.name);
      const age = ownWriteAge(this.store, own, p.ownApplied, now);
      if (!this.#counted.has(p.name) && age <= settings.targetMs) this.#counted.add(p.name);
      const counted = this.#counted.has(p.name);
      peers.push({ name: p.name, lagMs: age, counted });
      if (counted && age > lag) {
        lag = age;
        peer = p.name;
      }
    }
    // A peer that went away counts again only once it came back within the target.
    for (const name of this.#counted) if (!seen.has(name)) this.#counted.delete(name);
    this.#lag = lag;
    this.#peer = peer;
    this.#peers = peers;
    this.#state = lag > settings.hardMs ? FlowState.refusing : lag > settings.targetMs ? FlowState.waiting : FlowState.open;
    if (this.#waiters.size > 0) this.#settle(now, settings);
  }

  #settle(now: number, settings: FlowControlSettings): void {
    const maxWait = settings.hardMs - settings.targetMs;
    for (const w of this.#waiters) {
      if (this.#state === FlowState.open) {
        this.#waiters.delete(w);
        this.#observer?.flowWaited((now - w.since) / 1000);
        w.resolve();
      } else if (this.#state === FlowState.refusing || now - w.since >= maxWait) {
        this.#waiters.delete(w);
        this.#observer?.flowWaited((now - w.since) / 1000);
        w.reject(this.#state === FlowState.refusing ? this.#refusal('hardLimit', settings.hardMs) : this.#refusal('waitedTooLong', maxWait));
      }
    }
  }

  #refusal(reason: ReplicationLagError['reason'], limitMs: number): ReplicationLagError {
    this.#observer?.flowRefused(reason);
    return new ReplicationLagError(reason, this.#peer ?? '', this.#lag, limitMs, this.retryAfterSeconds);
  }

  report(): FlowReport {
    return {
      state: this.#state,
      targetMs: this.#settings?.targetMs ?? 0,
      hardMs: this.#settings?.hardMs ?? 0,
      lagMs: this.#lag,
      ...(this.#peer !== undefined ? { peer: this.#peer } : {}),
      waiting: this.#waiters.size,
      peers: this.#peers,
    };
  }

  /** Stops measuring; writes still waiting are refused as the node shuts down. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const w of this.#waiters) w.reject(new UnavailableError('shutting down'));
    this.#waiters.clear();
  }
}

import type { Logger, ReplicationTransport } from './types.js';

/** Which of a transport's peers are connected, once {@link whenPeersConnected} settled. */
export interface PeersReady {
  /** Every peer the transport knows is connected. */
  readonly ready: boolean;
  readonly connected: readonly string[];
  /** The peers still not connected when the wait ended (empty when `ready`). */
  readonly waiting: readonly string[];
}

/**
 * Resolves once every peer `transport` knows (configured, discovered or from the member
 * list) and every name in `peers` is connected, or once `timeoutMs` passed: `ready`
 * tells which, and `waiting` names the peers still missing. Name the peers you expect
 * when the transport learns them only after it started (nats discovers its peers'
 * streams). A node without peers is ready at once. Rejects when the transport stops or
 * `signal` aborts, so a caller never waits on a transport that went away.
 */
export async function whenPeersConnected(
  transport: Pick<ReplicationTransport, 'status' | 'state'>,
  o: { readonly timeoutMs: number; readonly peers?: readonly string[]; readonly intervalMs?: number; readonly signal?: AbortSignal },
): Promise<PeersReady> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    o.signal?.throwIfAborted();
    if (transport.state === 'stopped') throw new Error('the transport stopped while waiting for its peers');
    const live = new Map((transport.state === 'started' ? transport.status().peers : []).map((p) => [p.name, p.connected]));
    for (const name of o.peers ?? []) if (!live.has(name)) live.set(name, false);
    const connected = [...live].filter(([, up]) => up).map(([name]) => name);
    const waiting = [...live].filter(([, up]) => !up).map(([name]) => name);
    const ready = transport.state === 'started' && waiting.length === 0;
    if (ready || Date.now() >= deadline) return { ready, connected, waiting };
    await new Promise((r) => setTimeout(r, Math.min(o.intervalMs ?? 50, Math.max(1, deadline - Date.now()))));
  }
}

/**
 * The logger a transport uses when none is given: warnings (a refused peer, a failed
 * publish, a lost consumer) and errors go to stderr as one line each; debug and info are
 * dropped. Pass {@link silentLogger} to silence a transport, or pino for structured logs.
 */
export const warnLogger: Logger = {
  debug() {},
  info() {},
  warn(obj, msg) {
    console.warn(`${msg} ${JSON.stringify(obj)}`);
  },
  error(obj, msg) {
    console.error(`${msg} ${JSON.stringify(obj)}`);
  },
};

import { connect, type NatsConnection } from 'nats';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError, TransportStateError, type Lifecycle, type Logger } from '@replica/transport-api';
import { CONNECT_TIMEOUT_MS, PING_INTERVAL_MS, RECONNECT_CHECK_MS, RECONNECT_RECHECK_MS, RECONNECT_WAIT_MS, type NatsConfig } from './options.js';
import { checkTls, clientTlsOptions, explainConnectError } from './tls.js';

/**
 * The NATS client ignores credentials in server URLs: take `user:pass@` out of them
 * (the first URL that has them wins) and hand them over as options. The URLs that
 * remain are safe to log.
 */
export function splitCredentials(urls: readonly string[]): { servers: string[]; user?: string; pass?: string } {
  let user: string | undefined;
  let pass: string | undefined;
  const servers = urls.map((u) => {
    const m = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(u);
    if (!m) return u;
    const [name, password] = (m[2] as string).split(':');
    if (user === undefined) {
      user = decodeURIComponent(name ?? '');
      pass = password === undefined ? undefined : decodeURIComponent(password);
    }
    return `${m[1]}${m[3]}`;
  });
  return { servers, ...(user !== undefined ? { user } : {}), ...(pass !== undefined ? { pass } : {}) };
}

/**
 * This node's connection to the NATS servers. It reconnects by itself for as long as
 * the transport runs; each outage is counted once, and one that lasts is diagnosed: a
 * server that now refuses this node's certificate (or that the node no longer trusts)
 * is logged as such, not as an outage.
 */
export class BrokerConnection {
  /** Totals since construction. */
  readonly counters = { reconnects: 0, disconnects: 0, serverErrors: 0, tlsRefusals: 0 };
  readonly #servers: string[];
  readonly #auth: { readonly user: string | undefined; readonly pass: string | undefined };
  #nc: NatsConnection | undefined;
  #up = true;
  #disconnectedAt = 0;
  #reconnectCheck: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: NatsConfig,
    private readonly log: Logger,
    private readonly lifecycle: Lifecycle,
  ) {
    const { servers, user, pass } = splitCredentials(cfg.servers);
    this.#servers = servers;
    this.#auth = { user, pass };
  }

  /** Connected to a server right now (false while the client reconnects, and before and after the connection). */
  get connected(): boolean {
    return this.#up && this.#nc !== undefined && !this.#nc.isClosed();
  }

  /**
   * Connects as node `name`. Rejects with a {@link TransportStateError} that says why
   * when no server takes the connection: a TLS certificate either side refuses is told
   * at once, where the client would retry forever.
   */
  async open(name: string): Promise<NatsConnection> {
    const servers = this.#servers;
    const { user, pass } = this.#auth;
    const { tls: files } = this.cfg;
    try {
      const tls = files ? clientTlsOptions(files) : undefined;
      await checkTls(servers, files, this.#auth);
      this.#nc = await connect({
        servers,
        ...(user !== undefined ? { user, pass: pass ?? '' } : {}),
        ...(tls ? { tls } : {}),
        name: `replica-${name}`,
        // The first URL is this node's own server (where its stream lives); the others
        // are fallbacks, tried in the order given.
        noRandomize: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RECONNECT_WAIT_MS,
        pingInterval: PING_INTERVAL_MS,
        timeout: CONNECT_TIMEOUT_MS,
      });
      return this.#nc;
    } catch (err) {
      throw new TransportStateError(this.lifecycle.kind, 'new', `cannot connect to NATS at ${servers.join(', ')}: ${explainConnectError(err, files)}`, { cause: err });
    }
  }

  /** Follows the client's status events until the connection closes or `stopped` resolves; `reconnected` runs after each outage. */
  async watch(stopped: Promise<'stopped'>, reconnected: () => void): Promise<void> {
    const it = (this.#nc as NatsConnection).status()[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([it.next(), stopped]);
      if (next === 'stopped' || next.done) return;
      const s = next.value;
      if (s.type === 'disconnect') {
        // A reconnect attempt that failed after its TLS handshake reports another
        // disconnect, and each such report a reconnect when one succeeds: one outage,
        // counted and checked once.
        if (!this.#up) continue;
        this.#up = false;
        this.#disconnectedAt = Date.now();
        this.counters.disconnects++;
        this.log.warn({ server: s.data }, 'nats: disconnected from the server');
        this.#checkReconnectLater(RECONNECT_CHECK_MS);
      } else if (s.type === 'reconnect') {
        if (this.#up) continue;
        this.#up = true;
        this.counters.reconnects++;
        clearTimeout(this.#reconnectCheck);
        this.log.info({ server: s.data }, 'nats: reconnected');
        reconnected();
      } else if (s.type === 'error') {
        // -ERR from the server: an authorization or permissions violation, say
        this.counters.serverErrors++;
        this.log.error({ error: s.data }, 'nats: the server reported an error');
      } else if (s.type === 'ldm') {
        this.log.warn({ server: s.data }, 'nats: the server is shutting down (lame duck mode); the client moves to another server');
      }
    }
  }

  /**
   * While the client reconnects it only reports the addresses it tries: a server that
   * now refuses this node's certificate (or one the node no longer trusts) would look
   * like an outage. After `ms` without a connection, probe the servers as open() does
   * and log why they refuse, or that none answers; again while it lasts.
   */
  #checkReconnectLater(ms: number): void {
    clearTimeout(this.#reconnectCheck);
    this.#reconnectCheck = setTimeout(() => {
      if (this.#recovered()) return;
      const servers = this.#servers;
      const down = `${Math.round((Date.now() - this.#disconnectedAt) / 1000)} s`;
      checkTls(servers, this.cfg.tls, this.#auth).then(
        () => {
          if (this.#recovered()) return;
          this.log.warn({ servers, down }, 'nats: still disconnected from every server');
          this.#checkReconnectLater(RECONNECT_RECHECK_MS);
        },
        (err: unknown) => {
          if (this.#recovered()) return;
          this.counters.tlsRefusals++;
          this.log.error({ servers, down, reason: explainConnectError(err, this.cfg.tls) }, 'nats: cannot reconnect: a TLS handshake fails');
          this.#checkReconnectLater(RECONNECT_RECHECK_MS);
        },
      );
    }, ms);
    this.#reconnectCheck.unref();
  }

  /** Whether the outage the reconnect check looks into is over (or no longer matters). */
  #recovered(): boolean {
    return !this.lifecycle.started || this.#up;
  }

  /**
   * Reconnects so that the client reads its TLS files again (it reads them at every
   * connect). The files are checked first: unusable ones (unreadable, a key that does
   * not match), or ones every reachable server refuses, are a {@link ConfigError} saying
   * why, and the connection in use is left alone.
   */
  async reloadTls(): Promise<void> {
    const files = this.cfg.tls;
    if (!files) throw new ConfigError(['NATS_TLS_*: this node does not use TLS to NATS; there is nothing to reload']);
    try {
      createSecureContext({
        ...(files.ca !== undefined ? { ca: readFileSync(files.ca) } : {}),
        ...(files.cert !== undefined && files.key !== undefined ? { cert: readFileSync(files.cert), key: readFileSync(files.key) } : {}),
      });
    } catch (err) {
      throw new ConfigError([`NATS TLS files: ${(err as Error).message}`]);
    }
    try {
      await checkTls(this.#servers, files, this.#auth);
    } catch (err) {
      throw new ConfigError([`NATS TLS files: ${explainConnectError(err, files)}`]);
    }
    const nc = this.#nc;
    if (!nc || nc.isClosed()) throw new TransportStateError(this.lifecycle.kind, this.lifecycle.state, 'not connected to NATS');
    this.log.info({ servers: this.#servers }, 'nats: TLS files checked; reconnecting to use them');
    await nc.reconnect();
  }

  /** Closes the connection; the client does not reconnect any more. */
  async close(): Promise<void> {
    clearTimeout(this.#reconnectCheck);
    try {
      await this.#nc?.close();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'nats: closing the connection failed');
    }
  }
}

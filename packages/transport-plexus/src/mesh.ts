import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { TransportStateError, type Logger } from '@replica/transport-api';
import type { Admission } from './admission.js';
import { Frame, encodeNumberFrame } from './frames.js';
import type { Link } from './link.js';
import { PLEXUS, type PlexusConfig } from './options.js';

/** What the mesh hands its connections to. */
export interface MeshHost {
  readonly running: boolean;
  /** `socket` is an admitted TLS connection of `link`'s peer: a session takes it over (and clears `handshakeTimer` once the peer said hello). */
  attach(link: Link, socket: TLSSocket, certName: string, handshakeTimer: NodeJS.Timeout): void;
}

/**
 * The full mesh: one TLS connection per pair of nodes, dialled by the node whose name
 * sorts first and accepted by the other. A dialer keeps redialling a lost peer with
 * exponential backoff and jitter for as long as the transport runs; a peer silent for
 * `deadAfterMs` (pings every `heartbeatMs`) is disconnected.
 */
export class Mesh {
  #server: Server | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** start() ran: links added from now on are dialled when added. */
  #started = false;
  readonly #sockets = new Set<TLSSocket>();

  constructor(
    private readonly config: PlexusConfig,
    private readonly links: ReadonlyMap<string, Link>,
    private readonly admission: Admission,
    private readonly host: MeshHost,
    private readonly log: Logger,
  ) {}

  address(): { host: string; port: number } | undefined {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /** Listens for peers; rejects with a {@link TransportStateError} if it cannot. */
  async listen(): Promise<void> {
    const { host, port } = this.config.listen;
    let server: Server;
    try {
      server = createServer(this.admission.serverOptions(), (socket) => this.#accepted(socket));
    } catch (err) {
      throw new TransportStateError(PLEXUS, 'new', `TLS material is not usable: ${(err as Error).message}`);
    }
    server.on('tlsClientError', (err, socket) => this.admission.handshakeFailed(err, socket));
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw new TransportStateError(PLEXUS, 'new', `cannot listen on ${host}:${port}: ${(err as Error).message}`);
    }
  }

  /** Accepted connections use the admission's material from now on (dials read it at each dial). */
  useContext(): void {
    this.#server?.setSecureContext(this.admission.contextOptions());
  }

  /** Starts the heartbeat and dials every peer this node dials. */
  start(): void {
    this.#started = true;
    this.#heartbeat = setInterval(() => this.#tick(), this.config.heartbeatMs);
    for (const link of this.links.values()) if (link.dialer) this.#dial(link);
  }

  /** Stops listening, dialling and pinging and destroys every connection; resolves once all are closed. */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    const server = this.#server;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    const sockets = [...this.#sockets].map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : (s.once('close', () => resolve()), s.destroy()))));
    for (const link of this.links.values()) clearTimeout(link.reconnectTimer);
    await Promise.all([closed, ...sockets]);
  }

  /** Dials `link`'s peer again after a backoff delay (once: a pending redial is kept). */
  scheduleReconnect(link: Link): void {
    if (!this.host.running || !link.dialer || link.dropped || link.reconnectTimer) return;
    link.reconnectTimer = setTimeout(() => {
      link.reconnectTimer = undefined;
      if (link.everConnected) link.counters.reconnects++;
      this.#dial(link);
    }, link.backoff.next());
  }

  /** Dials `link`'s peer now if this node dials it and the mesh started (a peer added while the transport runs). */
  dial(link: Link): void {
    if (link.dialer && this.#started) this.#dial(link);
  }

  #dial(link: Link): void {
    if (!this.host.running || link.dropped) return;
    const socket = connect(this.admission.clientOptions(link.peer));
    this.#track(socket);
    socket.setNoDelay(true);
    const handshake = setTimeout(() => socket.destroy(new Error('handshake timed out')), this.config.deadAfterMs);
    // Until the session takes the socket over, failures are the dial's to report.
    const failed = (err: Error) => this.admission.dialFailed(link.peer, err);
    const closed = () => {
      clearTimeout(handshake);
      this.scheduleReconnect(link);
    };
    socket.on('error', failed);
    socket.once('close', closed);
    socket.once('secureConnect', () => {
      if (!this.host.running || link.dropped) return void socket.destroy();
      socket.off('error', failed);
      socket.off('close', closed);
      this.host.attach(link, socket, link.peer.name, handshake);
    });
  }

  #accepted(socket: TLSSocket): void {
    this.#track(socket);
    socket.setNoDelay(true);
    const link = this.admission.admit(socket, this.links);
    if (!link) return;
    if (!this.host.running) return void socket.destroy();
    const hello = setTimeout(() => socket.destroy(new Error('hello timed out')), this.config.deadAfterMs);
    this.host.attach(link, socket, link.name, hello);
  }

  #track(socket: TLSSocket): void {
    this.#sockets.add(socket);
    socket.on('error', () => {}); // reported by the dial or the session; never an unhandled 'error'
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #tick(): void {
    const now = Date.now();
    for (const link of this.links.values()) {
      const session = link.session;
      if (!session) continue;
      // While this side holds back reading (applies lag behind), the peer is not silent.
      if (session.socket.isPaused() || link.applying) session.lastReceived = now;
      if (now - session.lastReceived > this.config.deadAfterMs) {
        this.log.warn({ peer: link.name, silentMs: now - session.lastReceived }, 'plexus: peer silent, disconnecting');
        session.socket.destroy();
        continue;
      }
      if (session.connected) session.send(encodeNumberFrame(Frame.ping, now));
    }
  }
}

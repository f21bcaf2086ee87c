import type { TLSSocket } from 'node:tls';
import { MalformedFrameError, type LocalNode, type Logger } from '@replica/transport-api';
import { Frame, FrameDecoder, PROTOCOL, decodeHello, decodeSubscription, encodeControl, encodeNumberFrame, readNumber, type Hello, type RawFrame } from './frames.js';
import type { Link } from './link.js';
import type { PlexusConfig } from './options.js';
import { Receiver } from './receiver.js';
import { Sender } from './sender.js';

/** What a session needs from the transport that runs it. */
export interface SessionHost {
  readonly node: LocalNode;
  readonly config: PlexusConfig;
  readonly log: Logger;
  /** The peer said hello on `session`: ask it for what this node lacks, and tell the other peers who relays now. */
  opened(session: Session): void;
  /** Sends `session`'s peer what this node wants from it now. */
  subscribe(session: Session): void;
  /** `session` ended; `wasConnected` if it had got as far as hello. */
  closed(session: Session, why: string, wasConnected: boolean): void;
  /** A peer confirmed entries. */
  confirmed(): void;
}

/**
 * One TLS connection with a peer, from attach to close: the socket, its frame decoder,
 * the hello deadline, the sender (stream and in-flight window) and the receiver (queue
 * and apply loop). Nothing outlives it but what it wrote into its {@link Link}. Once
 * closed it reads, sends and applies nothing more, and its loops end.
 */
export class Session {
  /** Closed: its socket is (being) destroyed and it is no longer its link's session. */
  closed = false;
  /** Hello exchanged: replication runs. */
  connected = false;
  /** The peer's hello, once it came. */
  peerHello: Hello | undefined;
  /** When the peer was last heard from (or this side held back reading). */
  lastReceived = Date.now();
  readonly sender: Sender;
  readonly receiver: Receiver;
  readonly #decoder: FrameDecoder;

  constructor(
    readonly link: Link,
    readonly socket: TLSSocket,
    readonly host: SessionHost,
    /** Destroys the socket unless the peer says hello in time; the session clears it. */
    private readonly handshakeTimer: NodeJS.Timeout,
  ) {
    this.#decoder = new FrameDecoder(host.config.maxFrameBytes);
    this.sender = new Sender(this);
    this.receiver = new Receiver(this);
  }

  /** Starts reading and says hello. */
  open(): void {
    const { socket, host } = this;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => {
      if (!this.closed) host.log.warn({ peer: this.link.name, err: err.message }, 'plexus: connection error');
    });
    socket.on('close', () => this.close('closed'));
    socket.on('drain', () => this.sender.wake());
    this.send(encodeControl(Frame.hello, { protocol: PROTOCOL, node: host.node.name, cursors: host.node.cursors() }));
  }

  /** Writes one frame; false when the socket's buffer is full (wait for 'drain'). */
  send(frame: Buffer): boolean {
    const counters = this.link.counters;
    counters.bytesSent += frame.length;
    counters.framesSent++;
    return this.socket.write(frame);
  }

  /** Ends the session (idempotent): destroys the socket, drops what was queued, and detaches it from its link. */
  close(why: string): void {
    if (this.closed) return;
    const wasConnected = this.connected;
    this.closed = true;
    this.connected = false;
    clearTimeout(this.handshakeTimer);
    this.receiver.close();
    this.sender.wake();
    this.socket.destroy();
    this.host.closed(this, why, wasConnected);
  }

  /** The peer broke the protocol: count it, log it, close the connection. */
  protocolError(err: unknown): void {
    this.link.counters.malformedFrames++;
    this.host.log.warn({ peer: this.link.name, err: (err as Error).message, code: (err as { code?: string }).code }, 'plexus: protocol error, closing the connection');
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.closed) return;
    const counters = this.link.counters;
    counters.bytesReceived += chunk.length;
    this.lastReceived = Date.now();
    let frames: RawFrame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      return this.protocolError(err);
    }
    for (const f of frames) {
      counters.framesReceived++;
      try {
        this.#onFrame(f);
      } catch (err) {
        return this.protocolError(err);
      }
    }
  }

  #onFrame(f: RawFrame): void {
    switch (f.type) {
      case Frame.hello:
        return this.#hello(decodeHello(f.payload));
      case Frame.subscribe: {
        if (!this.connected) throw new MalformedFrameError('subscribe before hello');
        const sub = decodeSubscription(f.payload);
        this.link.announced(sub.cursors);
        return this.sender.subscribe(sub);
      }
      case Frame.ack:
        return this.sender.acked(readNumber(f.payload));
      case Frame.ping:
        this.send(encodeNumberFrame(Frame.pong, readNumber(f.payload)));
        return;
      case Frame.pong:
        readNumber(f.payload);
        return;
      case Frame.batch:
      case Frame.resyncBegin:
      case Frame.snapshot:
      case Frame.resyncEnd:
        if (!this.connected) throw new MalformedFrameError('data before hello');
        return this.receiver.push(f);
      default:
        throw new MalformedFrameError(`unexpected frame type ${f.type}`);
    }
  }

  #hello(hello: Hello): void {
    const { link, host } = this;
    if (hello.node !== link.name) throw new MalformedFrameError(`hello from ${hello.node} on the connection of ${link.name}`);
    if (this.connected) throw new MalformedFrameError('second hello');
    clearTimeout(this.handshakeTimer);
    const mine = host.node.name;
    const now = hello.cursors[mine] ?? 0;
    const confirmed = link.forgetIfLost(mine, now);
    if (confirmed !== undefined) host.log.warn({ peer: link.name, confirmed, now }, 'plexus: peer lost writes it had confirmed');
    this.peerHello = hello;
    link.holds = hello.cursors;
    this.connected = true;
    link.backoff.reset();
    link.everConnected = true;
    link.counters.connects++;
    host.log.info({ peer: link.name, certificate: link.certName }, 'plexus: peer connected');
    host.opened(this);
    void this.sender.run();
  }
}

import { isIP } from 'node:net';
import type { ConnectionOptions, SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls';
import { ConfigError, PeerRejectedError, TlsFailure, classifyTlsError, isCertificateFailure, type Logger } from '@replica/transport-api';
import type { PlexusPeer } from './options.js';
import { checkTlsMaterial, type TlsMaterial, type TlsValidity } from './tls-material.js';

/**
 * Why a peer connection was refused: the reasons `status().refused` counts under, also
 * named in logs and docs. A TLS failure, or one of plexus's own checks.
 */
export const Refusal = {
  ...TlsFailure,
  /** A valid certificate whose CN is no configured node. */
  unknownName: 'unknownName',
  /** A configured node connected, but this node is the one that dials it. */
  wrongDirection: 'wrongDirection',
  /** A node that was removed from the cluster. */
  removed: 'removed',
  /** A certificate whose fingerprint the member list revoked (whatever name it carries). */
  revoked: 'revoked',
} as const;
export type Refusal = (typeof Refusal)[keyof typeof Refusal];

/**
 * Who may connect: only peers with a certificate from the cluster CA whose CN names a
 * member, over TLS 1.3, and only in the agreed direction (the node whose name sorts
 * first dials). A removed member and a revoked certificate (by SHA-256 fingerprint) are
 * refused, on accepted and dialled connections alike. Every refusal is logged with its
 * reason and counted.
 */
export class Admission {
  readonly #refused: Partial<Record<Refusal, number>> = {};
  #removed: ReadonlySet<string> = new Set();
  #revoked: ReadonlySet<string> = new Set();
  /** The material connections are made with from now on (replaced by {@link replaceTls}). */
  #tls: TlsMaterial;
  #validity: TlsValidity | undefined;

  constructor(
    tls: TlsMaterial,
    private readonly log: Logger,
  ) {
    this.#tls = tls;
  }

  /** When this node's certificate and its first CA expire; undefined before the material was checked. */
  get validity(): TlsValidity | undefined {
    return this.#validity;
  }

  /**
   * Checks `tls` for node `nodeName` and, if usable, makes it the material of every
   * connection made from now on. Throws a {@link ConfigError} listing the problems
   * otherwise, and the material in use stays.
   */
  replaceTls(tls: TlsMaterial, nodeName: string): void {
    const { problems, validity } = checkTlsMaterial(tls, nodeName);
    if (problems.length > 0 || !validity) throw new ConfigError(problems.map((p) => `TLS: ${p}`));
    this.#tls = tls;
    this.#validity = validity;
  }

  /** From now on, refuses the nodes named in `removed` and every certificate whose fingerprint is in `revoked`. */
  bar(removed: ReadonlySet<string>, revoked: ReadonlySet<string>): void {
    this.#removed = removed;
    this.#revoked = revoked;
  }

  /** Why a certificate with this CN and fingerprint is barred, or undefined. */
  barred(name: string, fingerprint: string | undefined): Refusal | undefined {
    if (fingerprint !== undefined && this.#revoked.has(fingerprint)) return Refusal.revoked;
    if (this.#removed.has(name)) return Refusal.removed;
    return undefined;
  }

  /** Refusals so far, by reason. */
  refused(): Readonly<Record<string, number>> {
    return { ...this.#refused };
  }

  /** What a TLS context is made of: the material in use, TLS 1.3 only. */
  contextOptions(): SecureContextOptions {
    return { ca: this.#tls.ca, cert: this.#tls.cert, key: this.#tls.key, minVersion: 'TLSv1.3' };
  }

  serverOptions(): TlsOptions {
    return {
      ...this.contextOptions(),
      requestCert: true,
      // Verified in admit() before a single byte is read, so that a refusal can be
      // logged and counted with its reason (Node reports a rejected client
      // certificate to the server only as a reset connection).
      rejectUnauthorized: false,
    };
  }

  /** Options to dial `peer`; the connection fails unless its certificate names `peer`. */
  clientOptions(peer: PlexusPeer): ConnectionOptions {
    const { host, port, name } = peer;
    return {
      host,
      port,
      servername: isIP(host) ? undefined : host,
      ...this.contextOptions(),
      // The peer is identified by the node name in its certificate, not by its address.
      checkServerIdentity: (_host, cert) => {
        if (cert.subject?.CN !== name) return new PeerRejectedError(String(cert.subject?.CN), Refusal.wrongName, { cause: `certificate names ${String(cert.subject?.CN)}, expected ${name}` });
        const barred = this.barred(name, cert.fingerprint256);
        return barred ? new PeerRejectedError(name, barred) : undefined;
      },
    };
  }

  /** The link an accepted connection belongs to, or undefined once it is refused (and destroyed). */
  admit<L extends { readonly dialer: boolean }>(socket: TLSSocket, links: ReadonlyMap<string, L>): L | undefined {
    const cert = socket.getPeerCertificate();
    const name = String(cert?.subject?.CN ?? '');
    if (!socket.authorized) {
      // Node gives the verification error's code here (typed as an Error).
      const why: unknown = socket.authorizationError;
      const reason = name === '' ? Refusal.noCertificate : classifyTlsError(typeof why === 'object' && why !== null ? why : { code: why }).failure;
      this.refuse(name || 'unnamed', reason, socket.remoteAddress, why, socket);
      return undefined;
    }
    const barred = this.barred(name, cert.fingerprint256);
    if (barred) return void this.refuse(name, barred, socket.remoteAddress, undefined, socket);
    const link = links.get(name);
    if (!link) return void this.refuse(name || 'unnamed', Refusal.unknownName, socket.remoteAddress, undefined, socket);
    if (link.dialer) return void this.refuse(name, Refusal.wrongDirection, socket.remoteAddress, undefined, socket);
    return link;
  }

  /** A client's TLS handshake with this node's server failed. */
  handshakeFailed(err: Error, socket: TLSSocket): void {
    this.refuse('unknown', classifyTlsError(err).failure, socket.remoteAddress, err);
  }

  /** Dialling `peer` failed: a refusal if its certificate is not acceptable, else a passing failure. */
  dialFailed(peer: PlexusPeer, err: Error): void {
    const address = `${peer.host}:${peer.port}`;
    if (err instanceof PeerRejectedError) return this.refuse(peer.name, err.reason as Refusal, address, err.cause ?? err);
    const { failure } = classifyTlsError(err);
    if (isCertificateFailure(failure)) return this.refuse(peer.name, failure, address, err);
    this.log.debug({ peer: peer.name, err: err.message }, 'plexus: dial failed');
  }

  refuse(peer: string, reason: Refusal, address: string | undefined, cause?: unknown, socket?: TLSSocket): void {
    this.#refused[reason] = (this.#refused[reason] ?? 0) + 1;
    const err = new PeerRejectedError(peer, reason, { cause });
    const detail = cause instanceof Error ? cause.message : cause === undefined ? undefined : String(cause);
    this.log.warn({ peer, reason, address, detail }, `plexus: refused peer: ${err.message}`);
    socket?.destroy();
  }
}

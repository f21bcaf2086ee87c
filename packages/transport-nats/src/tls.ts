import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { TlsOptions } from 'nats';
import { TlsFailure, classifyTlsError, isCertificateFailure } from '@replica/transport-api';
import { TLS_CHECK_TIMEOUT_MS } from './options.js';

/** PEM file paths a node uses for its NATS connections. */
export interface NatsTlsFiles {
  /** CA that signed the servers' certificates; default: Node's trust store. */
  readonly ca?: string;
  /** Client certificate and its key, for servers that verify clients; both or neither. */
  readonly cert?: string;
  readonly key?: string;
}

/**
 * The nats client's TLS options for `files`. With them the client refuses a server
 * without TLS; it reads the files again at every reconnect.
 */
export function clientTlsOptions(files: NatsTlsFiles): TlsOptions {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new Error(`tls.cert and tls.key go together, but only tls.${files.cert === undefined ? 'key' : 'cert'} is set`);
  }
  return {
    ...(files.ca !== undefined ? { caFile: files.ca } : {}),
    ...(files.cert !== undefined && files.key !== undefined ? { certFile: files.cert, keyFile: files.key } : {}),
  };
}

/** What a certificate failure of a handshake with a NATS server means for this node. */
const CertificateProblem = {
  /** No CA this node trusts signed the server's certificate. */
  untrustedServer: 'untrustedServer',
  /** The server's certificate is out of date or names another host. */
  invalidServer: 'invalidServer',
  /** The server refused this node's client certificate (or its lack of one) with a TLS alert. */
  refusedClient: 'refusedClient',
} as const;
type CertificateProblem = (typeof CertificateProblem)[keyof typeof CertificateProblem];

/**
 * The certificate problem behind a TLS error code, or undefined for any other failure.
 * A handshake-failure alert from the server counts as a refused client certificate: it
 * is what servers send when a client certificate does not fit.
 */
function certificateProblem(code: string): { readonly problem: CertificateProblem; readonly alert: string } | undefined {
  // The code only: a message may name a certificate without being about one.
  const { failure, byPeer, alert = '' } = classifyTlsError({ code });
  if (byPeer) return isCertificateFailure(failure) || failure === TlsFailure.handshakeFailed ? { problem: CertificateProblem.refusedClient, alert } : undefined;
  if (failure === TlsFailure.untrustedCertificate) return { problem: CertificateProblem.untrustedServer, alert };
  if (failure === TlsFailure.expired || failure === TlsFailure.wrongName) return { problem: CertificateProblem.invalidServer, alert };
  return undefined;
}

/** What a TLS error means for this node, or undefined when it is not a certificate problem. */
function describeTlsError(err: { code?: unknown; message?: unknown }, files: NatsTlsFiles | undefined): string | undefined {
  const found = certificateProblem(typeof err.code === 'string' ? err.code : '');
  const message = typeof err.message === 'string' ? err.message : '';
  switch (found?.problem) {
    case undefined:
      return undefined;
    case CertificateProblem.untrustedServer: {
      const hint = files?.ca !== undefined ? `it is not signed by the CA in ${files.ca}` : 'no CA file is set, and no CA in Node\'s trust store signed it';
      return `the server's TLS certificate is not trusted (${message}): ${hint}`;
    }
    case CertificateProblem.invalidServer:
      return `the server's TLS certificate was refused: ${message}`;
    case CertificateProblem.refusedClient:
      return files?.cert !== undefined
        ? `the server refused this node's TLS client certificate ${files.cert} (TLS alert "${found.alert}"): it must be signed by a CA the server trusts (its tls ca_file) and allow client auth`
        : `the server requires a TLS client certificate (TLS alert "${found.alert}") and this node has none`;
  }
}

/**
 * A readable reason why the nats client (or {@link checkTls}) could not connect. The
 * error's code tells a certificate the node does not trust, a client certificate the
 * server refused, a TLS file the client could not read, or a server without TLS.
 */
export function explainConnectError(err: unknown, files: NatsTlsFiles | undefined): string {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown; chainedError?: { message?: unknown } };
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (e.code === 'SERVER_OPT_NA' && message === 'tls') return 'the server does not offer TLS, but this node is set to use TLS';
  if (e.code === 'TLS') return `cannot set up TLS: ${typeof e.chainedError?.message === 'string' ? e.chainedError.message : message}`;
  return describeTlsError(e, files) ?? message;
}

/**
 * Connects to each server in turn as the nats client does (its INFO in clear text, TLS
 * with `files`, CONNECT with the credentials, PING) until one answers, and rejects with
 * the TLS error when a handshake failed over a certificate (the server's, or this
 * node's that the server refused). A server that refuses the
 * client's certificate does so after the client saw its TLS 1.3 handshake complete: the
 * nats client then only times out, and retries the servers the first one announced,
 * forever. Resolves when a server answered, none offers TLS, or none could be reached.
 */
export async function checkTls(servers: readonly string[], files: NatsTlsFiles | undefined, auth: { readonly user: string | undefined; readonly pass: string | undefined }, timeoutMs = TLS_CHECK_TIMEOUT_MS): Promise<void> {
  let pem: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  try {
    pem = {
      ...(files?.ca !== undefined ? { ca: readFileSync(files.ca) } : {}),
      ...(files?.cert !== undefined && files.key !== undefined ? { cert: readFileSync(files.cert), key: readFileSync(files.key) } : {}),
    };
  } catch {
    return; // the client reports unreadable files itself
  }
  const connect = JSON.stringify({ verbose: false, pedantic: false, tls_required: true, ...(auth.user !== undefined ? { user: auth.user, pass: auth.pass ?? '' } : {}) });
  for (const url of servers) {
    const t = target(url);
    if (!t) continue;
    const outcome = await tryTls(t, pem, connect, timeoutMs);
    if (outcome === 'answered') return;
    if (outcome !== 'no answer') throw outcome;
  }
}

/** host and port of a server URL as the nats client reads it (scheme optional, port 4222 by default). */
function target(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url.includes('://') ? url : `nats://${url}`);
    return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port === '' ? 4222 : Number(u.port) };
  } catch {
    return undefined;
  }
}

/**
 * One connection for {@link checkTls}: 'answered' (PONG or -ERR, or no TLS offered),
 * 'no answer' (refused, closed, silent, or another error), or a certificate error.
 */
function tryTls(t: { host: string; port: number }, pem: { ca?: Buffer; cert?: Buffer; key?: Buffer }, connect: string, timeoutMs: number): Promise<'answered' | 'no answer' | Error> {
  return new Promise((resolve) => {
    const sockets: Socket[] = [];
    let settled = false;
    const done = (outcome: 'answered' | 'no answer' | Error) => {
      if (settled) return; // destroying the sockets below emits their close events
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
      for (const s of sockets) s.destroy();
    };
    const timer = setTimeout(() => done('no answer'), timeoutMs);
    const raw = netConnect({ host: t.host, port: t.port });
    sockets.push(raw);
    const gone = () => done('no answer');
    raw.on('error', gone);
    raw.on('close', gone);
    let info = '';
    const onInfo = (chunk: Buffer) => {
      info += chunk.toString('latin1');
      const end = info.indexOf('\r\n');
      if (end < 0) return;
      raw.off('data', onInfo);
      if (!/"tls_(required|available)":\s*true/.test(info.slice(0, end))) return done('answered');
      raw.off('close', gone).off('error', gone).on('error', () => {}); // the TLS socket reports from here on
      let secure: TLSSocket;
      try {
        secure = tlsConnect({ socket: raw, host: t.host, ...(isIP(t.host) === 0 ? { servername: t.host } : {}), ...pem });
      } catch {
        return done('no answer'); // unusable PEM data: the client reports it itself
      }
      sockets.push(secure);
      let reply = '';
      secure.on('secureConnect', () => secure.write(`CONNECT ${connect}\r\nPING\r\n`));
      secure.on('data', (d: Buffer) => {
        reply += d.toString('latin1');
        if (/PONG|-ERR/.test(reply)) done('answered');
      });
      secure.on('error', (err: Error & { code?: string }) => done(certificateProblem(err.code ?? '') !== undefined ? err : 'no answer'));
      secure.on('close', gone);
    };
    raw.on('data', onInfo);
  });
}

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { PlexusInit } from './options.js';

/** A node's TLS files, as PEM. */
export type TlsMaterial = PlexusInit['tls'];

/** Every certificate of a PEM bundle (a CA file may hold an old and a new CA during a rollover). */
export function pemCertificates(pem: string | Buffer): string[] {
  return String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The validity of this node's certificate and of its CAs, read once per material. */
export interface TlsValidity {
  /** When this node's certificate expires (ms since the epoch). */
  readonly certificateNotAfter: number;
  /** When the first of the trusted CAs expires (ms since the epoch). */
  readonly caNotAfter: number;
}

/**
 * Checks TLS material before it replaces what a running node uses: this node's
 * certificate must name `nodeName`, go with its key and be signed by one of the CAs in
 * the CA file, and Node must accept the three together. Returns the problems (empty
 * when usable) and, when usable, the validity of the certificates.
 */
export function checkTlsMaterial(tls: TlsMaterial, nodeName: string): { problems: string[]; validity?: TlsValidity } {
  const problems: string[] = [];
  let cert: X509Certificate | undefined;
  try {
    cert = new X509Certificate(tls.cert);
  } catch (err) {
    problems.push(`the certificate cannot be read: ${(err as Error).message}`);
  }
  const cas: X509Certificate[] = [];
  const pems = pemCertificates(tls.ca);
  if (pems.length === 0) problems.push('the CA file holds no certificate');
  for (const [i, pem] of pems.entries()) {
    try {
      cas.push(new X509Certificate(pem));
    } catch (err) {
      problems.push(`CA certificate ${i + 1} cannot be read: ${(err as Error).message}`);
    }
  }
  if (cert) {
    const name = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1] ?? '';
    if (name !== nodeName) problems.push(`the certificate names ${name || 'nobody'}, but this node is ${nodeName}; peers would refuse it`);
    try {
      if (!cert.checkPrivateKey(createPrivateKey(tls.key))) problems.push('the key does not belong to the certificate');
    } catch (err) {
      problems.push(`the key cannot be read: ${(err as Error).message}`);
    }
    if (cas.length > 0 && !cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
      problems.push('no CA in the CA file signed the certificate');
    }
  }
  if (problems.length === 0) {
    try {
      createSecureContext({ ca: tls.ca, cert: tls.cert, key: tls.key });
    } catch (err) {
      problems.push(`TLS refuses the material: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0 || !cert) return { problems };
  return {
    problems,
    validity: { certificateNotAfter: Date.parse(cert.validTo), caNotAfter: Math.min(...cas.map((ca) => Date.parse(ca.validTo))) },
  };
}

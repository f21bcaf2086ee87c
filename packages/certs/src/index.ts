// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600_000;

/** PEM texts of one key pair and its certificate. */
export interface Credentials {
  readonly cert: string;
  readonly key: string;
}

export interface CertificateAuthority extends Credentials {
  readonly name: string;
}

export interface NodeCertificateOptions {
  /** Node name: the certificate's CN and a DNS SAN. */
  readonly name: string;
  /** Extra SANs: DNS names or IP addresses (default: localhost and 127.0.0.1). */
  readonly hosts?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

function pemKey(pkcs8: ArrayBuffer): string {
  const b64 = Buffer.from(pkcs8).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

const serial = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');

/** Creates a cluster certificate authority (EC P-256, 10 years by default). */
export async function createCertificateAuthority(name = 'replica-cluster-ca', days = 3650): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + days * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { name, cert: cert.toString('pem'), key: pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** Issues a node certificate (client and server auth) signed by `ca`, with a new key pair. */
export async function createNodeCertificate(ca: CertificateAuthority, opts: NodeCertificateOptions): Promise<Credentials> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await issue(ca, keys.publicKey, opts);
  return { cert, key: pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** A certificate request and its private key, PEM. */
export interface CertificateRequest {
  readonly csr: string;
  readonly key: string;
}

/** Creates a key pair and a PKCS#10 request for node `name` (its CN), to be signed by a CA holder. */
export async function createCertificateRequest(name: string): Promise<CertificateRequest> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${name}`, keys, signingAlgorithm: ALG });
  return { csr: csr.toString('pem'), key: pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** What {@link readCertificateRequest} found in a request: the node name it asks for, once its signature verified. */
export interface RequestedCertificate {
  readonly name: string;
  /** Signs it: a node certificate for `name` with the request's public key. */
  sign(ca: CertificateAuthority, opts?: Omit<NodeCertificateOptions, 'name'>): Promise<string>;
}

/**
 * Parses a PEM certificate request and checks its signature (the requester holds the
 * key). Throws an Error saying what is wrong: not a request, a bad signature, not
 * exactly one CN.
 */
export async function readCertificateRequest(pem: string): Promise<RequestedCertificate> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    throw new Error(`not a PEM certificate request: ${(err as Error).message}`);
  }
  if (!(await csr.verify().catch(() => false))) throw new Error('the request\'s signature does not verify');
  const cns = csr.subjectName.getField('CN');
  if (cns.length !== 1) throw new Error(`the request must name exactly one CN, it names ${cns.length}`);
  const name = cns[0] as string;
  return { name, sign: (ca, opts = {}) => issue(ca, csr.publicKey, { ...opts, name }) };
}

async function issue(ca: CertificateAuthority, publicKey: x509.PublicKeyType, opts: NodeCertificateOptions): Promise<string> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await webcrypto.subtle.importKey('pkcs8', pemBody(ca.key), ALG, false, ['sign']);
  const now = Date.now();
  const hosts = opts.hosts ?? ['localhost', '127.0.0.1'];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${opts.name}`,
    issuer: caCert.subject,
    notBefore: opts.notBefore ?? new Date(now - DAY),
    notAfter: opts.notAfter ?? new Date(now + 825 * DAY),
    signingAlgorithm: ALG,
    publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: opts.name },
        ...hosts.map((h) => (/^[\d.]+$|:/.test(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return cert.toString('pem');
}

function pemBody(pem: string): ArrayBuffer {
  const b = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

import { createHash, createPrivateKey, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, isNodeName, parseHostPort } from '@replica/transport-api';
import { readCertificateRequest, type CertificateAuthority } from '@replica/certs';
import { InvalidMemberError, JoinTokenInvalidError, MemberExistsError } from './errors.js';
import type { MemberRecord, Membership } from './membership.js';
import { objectBody } from './requests.js';

/** How long a join token lives unless asked otherwise, and at most, in seconds. */
export const JOIN_TOKEN_TTL_S = 900;
export const JOIN_TOKEN_MAX_TTL_S = 24 * 3600;
/** Every join token starts with this: a token is recognisable, and never starts with '-'. */
export const JOIN_TOKEN_PREFIX = 'rjt_';
/** Tokens a node keeps at once; issuing past this drops the oldest. */
const MAX_TOKENS = 1000;

export interface JoinToken {
  readonly token: string;
  readonly name: string;
  readonly expiresAt: string;
}

export interface Joined {
  /** The new node's certificate (PEM), signed by the cluster CA. */
  readonly certificate: string;
  /** The CA file this node trusts (PEM, possibly old and new CA during a rollover): the new node's TLS_CA. */
  readonly ca: string;
  readonly member: MemberRecord;
}

/**
 * Signs the certificate requests of joining nodes on a member that holds the cluster CA
 * key (TLS_CA_KEY). An operator issues a one-time token for one node name
 * ({@link issue}); the new node presents it with its request and replication address
 * ({@link redeem}) and gets its certificate, and is added to the member list. Tokens
 * live in this process only: they work on the node that issued them, once, until they
 * expire or the node restarts.
 */
export class JoinSigner {
  /** By SHA-256 of the token: the token itself is never kept. */
  readonly #tokens = new Map<string, { name: string; expiresAt: number }>();

  private constructor(
    private readonly ca: CertificateAuthority,
    private readonly caBundle: string,
  ) {}

  /**
   * Reads the CA file (a bundle may hold several CAs) and the CA key, and picks the CA
   * certificate the key belongs to. Throws a {@link ConfigError} when the key is not an
   * EC P-256 key (what replica-certs makes) or belongs to no CA in the file.
   */
  static fromFiles(caFile: string, caKeyFile: string): JoinSigner {
    const problems: string[] = [];
    let bundle = '';
    let keyPem = '';
    try {
      bundle = readFileSync(caFile, 'utf8');
      const key = createPrivateKey(readFileSync(caKeyFile));
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') problems.push('TLS_CA_KEY must be an EC P-256 key, as replica-certs creates');
      keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
      const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
      const certs = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      const mine = certs.find((pem) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }).equals(spki));
      if (!mine) problems.push(`TLS_CA_KEY belongs to no CA certificate in TLS_CA (${certs.length} there)`);
      else if (problems.length === 0) return new JoinSigner({ name: new X509Certificate(mine).subject, cert: mine, key: keyPem }, bundle);
    } catch (err) {
      problems.push(`TLS_CA_KEY: ${(err as Error).message}`);
    }
    throw new ConfigError(problems);
  }

  /** A new one-time token for node `name`, valid `ttlSeconds`. The caller checked that `name` may join. */
  issue(name: string, ttlSeconds = JOIN_TOKEN_TTL_S): JoinToken {
    this.#expire();
    if (this.#tokens.size >= MAX_TOKENS) this.#tokens.delete(this.#tokens.keys().next().value as string);
    // The prefix names what the secret is (in logs, in a secret scanner) and keeps the
    // token from starting with '-': base64url can, and a shell command line then takes
    // the token for an option (`replica-admin join -b…`: "Unknown option '-b'").
    const token = `${JOIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const expiresAt = Date.now() + ttlSeconds * 1000;
    this.#tokens.set(hash(token), { name, expiresAt });
    return { token, name, expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * Checks `token`, the request (its signature, its CN = the token's name) and the
   * address; then uses the token up, signs the request and adds the node to the member
   * list. A refusal before that leaves the token usable.
   */
  async redeem(token: unknown, csr: unknown, address: unknown, membership: Membership): Promise<Joined> {
    this.#expire();
    const key = typeof token === 'string' ? hash(token) : undefined;
    const entry = key === undefined ? undefined : this.#tokens.get(key);
    if (!entry || key === undefined) throw new JoinTokenInvalidError();
    if (typeof csr !== 'string') throw new InvalidMemberError('csr: a PEM certificate request is required (replica-certs request)');
    if (typeof address !== 'string') throw new InvalidMemberError('address: the replication address (host:port) of the new node is required');
    let request: Awaited<ReturnType<typeof readCertificateRequest>>;
    try {
      request = await readCertificateRequest(csr);
    } catch (err) {
      throw new InvalidMemberError(`csr: ${(err as Error).message}`);
    }
    if (request.name !== entry.name) throw new InvalidMemberError(`csr: the request names ${JSON.stringify(request.name)}, the token is for ${entry.name}`);
    const change = membership.checkAdd({ name: entry.name, address });
    // Used up before the first await that could let a second request with it through.
    if (!this.#tokens.delete(key)) throw new JoinTokenInvalidError();
    const certificate = await request.sign(this.ca, { hosts: [(parseHostPort(change.address) as { host: string }).host] });
    const member = await membership.add(change);
    return { certificate, ca: this.caBundle, member };
  }

  #expire(): void {
    const now = Date.now();
    for (const [k, t] of this.#tokens) if (t.expiresAt <= now) this.#tokens.delete(k);
  }
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Checks a join-token request body: `{name, ttlSeconds?}`. */
export function tokenRequest(body: unknown, membership: Membership): { name: string; ttlSeconds: number } {
  const { name, ttlSeconds = JOIN_TOKEN_TTL_S } = objectBody(body, '{"name": "n4", "ttlSeconds": 900}', ['name', 'ttlSeconds']);
  if (!isNodeName(name)) throw new InvalidMemberError(`name: ${JSON.stringify(name ?? null)} is not a node name`);
  if (!Number.isInteger(ttlSeconds) || (ttlSeconds as number) < 1 || (ttlSeconds as number) > JOIN_TOKEN_MAX_TTL_S) {
    throw new InvalidMemberError(`ttlSeconds: an integer from 1 to ${JOIN_TOKEN_MAX_TTL_S}`);
  }
  if (membership.list().some((m) => m.name === name && m.state === 'active')) throw new MemberExistsError(name);
  return { name, ttlSeconds: ttlSeconds as number };
}

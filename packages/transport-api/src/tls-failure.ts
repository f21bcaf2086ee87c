/**
 * Why a TLS handshake failed, read from Node's or OpenSSL's error code. These names are
 * the reasons transports count refusals under, so they are part of the metrics.
 */
export const TlsFailure = {
  /** A certificate is outside its validity period. */
  expired: 'expired',
  /** A certificate names another host. */
  wrongName: 'wrongName',
  /** No certificate where one is required. */
  noCertificate: 'noCertificate',
  /** A certificate no trusted CA signed (or whose signature does not verify). */
  untrustedCertificate: 'untrustedCertificate',
  /** The other side refused a certificate for another reason (revoked, unsupported, access denied). */
  refusedCertificate: 'refusedCertificate',
  /** The other side does not speak TLS. */
  notTls: 'notTls',
  /** Anything else. */
  handshakeFailed: 'handshakeFailed',
} as const;
export type TlsFailure = (typeof TlsFailure)[keyof typeof TlsFailure];

const RULES: readonly (readonly [RegExp, TlsFailure])[] = [
  [/EXPIRED|NOT_YET_VALID/, TlsFailure.expired],
  [/ALTNAME_INVALID/, TlsFailure.wrongName],
  [/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/, TlsFailure.noCertificate],
  [/UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|UNKNOWN_CA|SELF_SIGNED|SIGNATURE_FAILURE|DECRYPT/, TlsFailure.untrustedCertificate],
  [/BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|ACCESS_DENIED/, TlsFailure.refusedCertificate],
  [/WRONG_VERSION|HTTP_REQUEST|UNSUPPORTED_PROTOCOL|PACKET_LENGTH|RECORD_LAYER|RECORD_OVERFLOW/, TlsFailure.notTls],
];

export interface TlsFailureInfo {
  readonly failure: TlsFailure;
  /** The other side reported it with a TLS alert (it refused us), rather than this side finding it. */
  readonly byPeer: boolean;
  /** The alert's name in words ("unknown ca"), when `byPeer`. */
  readonly alert?: string;
}

/**
 * Classifies a TLS error by its code; where the code tells nothing (or there is none),
 * by its message.
 */
export function classifyTlsError(err: { readonly code?: unknown; readonly message?: unknown }): TlsFailureInfo {
  const code = typeof err.code === 'string' ? err.code : '';
  const message = typeof err.message === 'string' ? err.message.toUpperCase().replaceAll(' ', '_') : '';
  const match = (text: string) => RULES.find(([re]) => re.test(text))?.[1];
  const failure = match(code) ?? match(message) ?? TlsFailure.handshakeFailed;
  const alert = /ALERT_([A-Z_]+)$/.exec(code)?.[1];
  return alert === undefined ? { failure, byPeer: false } : { failure, byPeer: true, alert: alert.toLowerCase().replaceAll('_', ' ') };
}

/** Whether a TLS failure is about a certificate (as opposed to a peer that does not speak TLS, or a broken handshake). */
export function isCertificateFailure(f: TlsFailure): boolean {
  return f !== TlsFailure.notTls && f !== TlsFailure.handshakeFailed;
}

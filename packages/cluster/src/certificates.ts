// The certificate files of a local cluster, all signed by one CA.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority, createNodeCertificate, type CertificateAuthority } from '@replica/certs';

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

export interface ClusterCertificates {
  /** Path of the CA certificate (`<certDir>/ca.crt`). */
  readonly caFile: string;
  /**
   * Issues a certificate with CN `name`, valid for `hosts` (DNS names and IP addresses;
   * default `localhost` and the cluster's host), and writes `<certDir>/<name>.crt` and
   * `.key` (mode 0600).
   */
  issue(name: string, hosts?: readonly string[]): Promise<CertificateFiles>;
}

/**
 * Creates `certDir` and writes the CA certificate of `given` (or of a new CA, whose key
 * is never written) to `ca.crt`. Certificates it issues are valid for `localhost` and
 * `host` unless `issue` is given other hosts.
 */
export async function clusterCertificates(certDir: string, host: string, given: CertificateAuthority | undefined): Promise<ClusterCertificates> {
  mkdirSync(certDir, { recursive: true });
  const ca = given ?? (await createCertificateAuthority());
  const caFile = join(certDir, 'ca.crt');
  writeFileSync(caFile, ca.cert);
  return {
    caFile,
    async issue(name, hosts = ['localhost', host]) {
      const c = await createNodeCertificate(ca, { name, hosts });
      const files = { cert: join(certDir, `${name}.crt`), key: join(certDir, `${name}.key`) };
      writeFileSync(files.cert, c.cert);
      writeFileSync(files.key, c.key, { mode: 0o600 });
      return files;
    },
  };
}

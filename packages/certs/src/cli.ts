#!/usr/bin/env node
// replica-certs: the cluster CA and node certificates. See USAGE.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isNodeName } from '@replica/transport-api';
import { parseCli, usageError, type CliSpec } from '@replica/transport-api/cli';
import { createCertificateAuthority, createCertificateRequest, createNodeCertificate, readCertificateRequest, type CertificateAuthority } from './index.js';

const USAGE = `usage:
  replica-certs --out <dir> --nodes n1,n2,n3 [--hosts localhost,127.0.0.1] [--days 825]
      writes ca.crt and ca.key (or reuses them if <dir> holds both) and <node>.crt / <node>.key per node
  replica-certs request --name <node> --out <dir>
      writes <node>.key and a certificate request <node>.csr, for a CA holder to sign
  replica-certs sign --csr <file> --ca-dir <dir> [--hosts …] [--days 825] [--out <file>]
      signs a request with the CA in <dir> (ca.crt, ca.key); writes the certificate to --out or prints it
Keys are written with mode 0600. -h/--help, --version. Exit status 2 on a usage error,
1 when a request cannot be signed.`;

const SPEC = { name: 'replica-certs', usage: USAGE, packageJson: new URL('../package.json', import.meta.url) };

function fail(problems: readonly string[]): never {
  usageError(SPEC, problems.join('; '));
}

function args(argv: string[], options: NonNullable<CliSpec['options']>): Record<string, string | undefined> {
  return parseCli<Record<string, string | undefined>>({ ...SPEC, options }, argv).values;
}

/** Writes `text` to `path`; a secret (a key) with mode 0600 from the start, and an existing file narrowed too. */
function write(path: string, text: string, secret: boolean): void {
  writeFileSync(path, text, secret ? { mode: 0o600 } : {});
  if (secret) chmodSync(path, 0o600);
  console.log(`created ${path}`);
}

function daysFrom(v: unknown, problems: string[]): number {
  const days = Number(v ?? '825');
  if (!Number.isInteger(days) || days < 1) problems.push('--days must be a positive integer');
  return days;
}

const hostsFrom = (v: unknown) => String(v ?? 'localhost,127.0.0.1').split(',').filter(Boolean);

async function issueAll(argv: string[]): Promise<void> {
  const values = args(argv, { out: { type: 'string' }, nodes: { type: 'string' }, hosts: { type: 'string' }, days: { type: 'string' } });
  const problems: string[] = [];
  if (!values['out']) problems.push('--out is required');
  const nodes = String(values['nodes'] ?? '').split(',').filter(Boolean);
  if (nodes.length === 0) problems.push('--nodes is required');
  for (const n of nodes) if (!isNodeName(n)) problems.push(`invalid node name ${JSON.stringify(n)}`);
  if (nodes.includes('ca')) problems.push('a node cannot be named "ca" (its files would replace the CA\'s)');
  const days = daysFrom(values['days'], problems);
  if (problems.length > 0) fail(problems);
  const out = values['out'] as string;
  mkdirSync(out, { recursive: true });
  // Reuse an existing CA in the directory, so nodes can be added to a running cluster.
  let ca: CertificateAuthority;
  if (existsSync(join(out, 'ca.crt')) && existsSync(join(out, 'ca.key'))) {
    ca = { name: 'existing', cert: readFileSync(join(out, 'ca.crt'), 'utf8'), key: readFileSync(join(out, 'ca.key'), 'utf8') };
    console.log(`using the existing CA in ${out}`);
  } else {
    ca = await createCertificateAuthority();
    write(join(out, 'ca.crt'), ca.cert, false);
    write(join(out, 'ca.key'), ca.key, true);
  }
  const hosts = hostsFrom(values['hosts']);
  for (const name of nodes) {
    const c = await createNodeCertificate(ca, { name, hosts, notAfter: new Date(Date.now() + days * 86400_000) });
    write(join(out, `${name}.crt`), c.cert, false);
    write(join(out, `${name}.key`), c.key, true);
  }
}

async function request(argv: string[]): Promise<void> {
  const values = args(argv, { name: { type: 'string' }, out: { type: 'string' } });
  const problems: string[] = [];
  const name = values['name'];
  if (!isNodeName(name)) problems.push(`--name must be a node name, got ${JSON.stringify(name ?? null)}`);
  if (!values['out']) problems.push('--out is required');
  if (problems.length > 0) fail(problems);
  const out = values['out'] as string;
  mkdirSync(out, { recursive: true });
  const r = await createCertificateRequest(name as string);
  write(join(out, `${String(name)}.key`), r.key, true);
  write(join(out, `${String(name)}.csr`), r.csr, false);
}

async function sign(argv: string[]): Promise<void> {
  const values = args(argv, { csr: { type: 'string' }, 'ca-dir': { type: 'string' }, hosts: { type: 'string' }, days: { type: 'string' }, out: { type: 'string' } });
  const problems: string[] = [];
  if (!values['csr']) problems.push('--csr is required');
  if (!values['ca-dir']) problems.push('--ca-dir is required');
  const days = daysFrom(values['days'], problems);
  if (problems.length > 0) fail(problems);
  const dir = values['ca-dir'] as string;
  let ca: CertificateAuthority;
  let csr: string;
  try {
    ca = { name: 'ca', cert: readFileSync(join(dir, 'ca.crt'), 'utf8'), key: readFileSync(join(dir, 'ca.key'), 'utf8') };
    csr = readFileSync(values['csr'] as string, 'utf8');
  } catch (err) {
    fail([(err as Error).message]);
  }
  let cert: string;
  try {
    const req = await readCertificateRequest(csr);
    if (!isNodeName(req.name) || req.name === 'ca') fail([`the request's CN ${JSON.stringify(req.name)} is not a node name`]);
    cert = await req.sign(ca, { hosts: hostsFrom(values['hosts']), notAfter: new Date(Date.now() + days * 86400_000) });
  } catch (err) {
    console.error(`replica-certs: ${(err as Error).message}`);
    process.exit(1);
  }
  if (values['out']) write(values['out'] as string, cert, false);
  else process.stdout.write(cert);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'request') await request(rest);
else if (command === 'sign') await sign(rest);
else await issueAll(process.argv.slice(2));

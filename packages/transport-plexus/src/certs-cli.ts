#!/usr/bin/env node
// replica-certs --out <dir> --nodes n1,n2,n3 [--hosts localhost,127.0.0.1] [--days 825]
// Writes ca.crt, ca.key and <node>.crt / <node>.key for each node (keys mode 0600).
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isNodeName } from '@replica/transport-api';
import { createCertificateAuthority, createNodeCertificate, type CertificateAuthority } from './certs.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    nodes: { type: 'string' },
    hosts: { type: 'string', default: 'localhost,127.0.0.1' },
    days: { type: 'string', default: '825' },
    help: { type: 'boolean', default: false },
  },
});
const usage = 'usage: replica-certs --out <dir> --nodes n1,n2,n3 [--hosts localhost,127.0.0.1] [--days 825]';
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const problems: string[] = [];
if (!values.out) problems.push('--out is required');
const nodes = (values.nodes ?? '').split(',').filter(Boolean);
if (nodes.length === 0) problems.push('--nodes is required');
for (const n of nodes) if (!isNodeName(n)) problems.push(`invalid node name ${JSON.stringify(n)}`);
if (nodes.includes('ca')) problems.push('a node cannot be named "ca" (its files would replace the CA\'s)');
const days = Number(values.days);
if (!Number.isInteger(days) || days < 1) problems.push('--days must be a positive integer');
if (problems.length > 0) {
  console.error(`replica-certs: ${problems.join('; ')}\n${usage}`);
  process.exit(2);
}

const out = values.out as string;
mkdirSync(out, { recursive: true });
const write = (file: string, text: string, secret: boolean) => {
  // Keys are created with mode 0600 (never readable by others, even briefly); an existing file is narrowed too.
  writeFileSync(join(out, file), text, secret ? { mode: 0o600 } : {});
  if (secret) chmodSync(join(out, file), 0o600);
};
// Reuse an existing CA in the directory, so nodes can be added to a running cluster.
let ca: CertificateAuthority;
if (existsSync(join(out, 'ca.crt')) && existsSync(join(out, 'ca.key'))) {
  ca = { name: 'existing', cert: readFileSync(join(out, 'ca.crt'), 'utf8'), key: readFileSync(join(out, 'ca.key'), 'utf8') };
  console.log(`using the existing CA in ${out}`);
} else {
  ca = await createCertificateAuthority();
  write('ca.crt', ca.cert, false);
  write('ca.key', ca.key, true);
  console.log(`created ${join(out, 'ca.crt')}`);
}
const hosts = (values.hosts ?? '').split(',').filter(Boolean);
for (const name of nodes) {
  const c = await createNodeCertificate(ca, { name, hosts, notAfter: new Date(Date.now() + days * 86400_000) });
  write(`${name}.crt`, c.cert, false);
  write(`${name}.key`, c.key, true);
  console.log(`created ${join(out, `${name}.crt`)}`);
}

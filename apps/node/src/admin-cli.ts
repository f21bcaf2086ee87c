#!/usr/bin/env node
// replica-admin: the cluster's admin API from a shell. See `replica-admin --help`.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseCli, usageError } from '@replica/transport-api/cli';

const USAGE = `usage: replica-admin [--url URL] [--token TOKEN] <command>

commands:
  members                     list the cluster's members (GET /cluster/members)
  add <name> [<host:port>]    add a node; plexus needs its replication address (POST /cluster/members)
  remove <name>               remove a node (DELETE /cluster/members/<name>)
  join-token <name> [--ttl S] a one-time token for <name> to join with a certificate request
                              (POST /cluster/join-tokens; on a node with TLS_CA_KEY)
  join <token> <csr file> <host:port> --cert-out F --ca-out F
                              present a join token and a request (replica-certs request) to the node
                              that issued the token; writes the signed certificate and the CA file.
                              Needs no admin token.

options:
  --url URL      a member's REST address (default: $REPLICA_URL, else http://127.0.0.1:8080)
  --token TOKEN  the admin token (default: $ADMIN_TOKEN)
  --json         print the node's answer as JSON
  --ttl S        join-token: seconds the token lives (default 900, at most 86400)
  --cert-out F, --ca-out F  join: where to write the certificate and the CA file
  --help, --version

exit status: 0 done; 1 the node refused (its error code and message are printed); 2 usage; 3 the node could not be reached`;

const SPEC = { name: 'replica-admin', usage: USAGE, packageJson: new URL('../package.json', import.meta.url) };

function usage(message: string): never {
  usageError(SPEC, message);
}

async function main(): Promise<void> {
  const { values, positionals } = parseCli<{ url?: string; token?: string; json: boolean; ttl?: string; 'cert-out'?: string; 'ca-out'?: string }>({
    ...SPEC,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      ttl: { type: 'string' },
      'cert-out': { type: 'string' },
      'ca-out': { type: 'string' },
    },
  });
  const url = (values.url ?? process.env['REPLICA_URL'] ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const [command, ...rest] = positionals;
  const token = values.token ?? process.env['ADMIN_TOKEN'];
  if (!token && command !== 'join') usage('no admin token: pass --token or set ADMIN_TOKEN');
  let request: { method: string; path: string; body?: unknown };
  switch (command) {
    case 'members':
      if (rest.length > 0) usage('members takes no arguments');
      request = { method: 'GET', path: '/cluster/members' };
      break;
    case 'add': {
      if (rest.length < 1 || rest.length > 2) usage('add takes a name and, for plexus, the replication address host:port');
      const [name, address] = rest as [string, string | undefined];
      request = { method: 'POST', path: '/cluster/members', body: { name, ...(address !== undefined ? { address } : {}) } };
      break;
    }
    case 'remove':
      if (rest.length !== 1) usage('remove takes one name');
      request = { method: 'DELETE', path: `/cluster/members/${encodeURIComponent(rest[0] as string)}` };
      break;
    case 'join-token': {
      if (rest.length !== 1) usage('join-token takes one name');
      const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
      if (ttl !== undefined && !Number.isInteger(ttl)) usage('--ttl must be a whole number of seconds');
      request = { method: 'POST', path: '/cluster/join-tokens', body: { name: rest[0], ...(ttl !== undefined ? { ttlSeconds: ttl } : {}) } };
      break;
    }
    case 'join': {
      if (rest.length !== 3) usage('join takes the token, the request file and the replication address host:port');
      if (!values['cert-out'] || !values['ca-out']) usage('join needs --cert-out and --ca-out');
      const [joinToken, csrFile, address] = rest as [string, string, string];
      let csr: string;
      try {
        csr = readFileSync(csrFile, 'utf8');
      } catch (err) {
        usage(`cannot read ${csrFile}: ${(err as Error).message}`);
      }
      request = { method: 'POST', path: '/cluster/join', body: { token: joinToken, csr, address } };
      break;
    }
    case undefined:
      usage('no command');
    default:
      usage(`unknown command ${JSON.stringify(command)}`);
  }

  let res: Response;
  try {
    res = await fetch(`${url}${request.path}`, {
      method: request.method,
      headers: { ...(command !== 'join' ? { authorization: `Bearer ${String(token)}` } : {}), ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    process.stderr.write(`replica-admin: cannot reach ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}\n`);
    process.exit(3);
  }
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    process.stderr.write(`replica-admin: ${url} answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}\n`);
    process.exit(3);
  }
  if (!res.ok) {
    process.stderr.write(`replica-admin: ${res.status} ${String(body['code'])}: ${String(body['message'])}\n`);
    process.exit(1);
  }
  if (values.json) return void process.stdout.write(`${JSON.stringify(body)}\n`);
  if (command === 'join-token') return void process.stdout.write(`${String(body['token'])}\n`);
  if (command === 'join') {
    writeFileSync(values['cert-out'] as string, String(body['certificate']));
    writeFileSync(values['ca-out'] as string, String(body['ca']));
    return void process.stdout.write(`joined as ${String((body['member'] as Record<string, unknown>)['name'])}: wrote ${String(values['cert-out'])} and ${String(values['ca-out'])}\n`);
  }
  const members = command === 'members' ? (body['members'] as Record<string, unknown>[]) : [body];
  for (const m of members) {
    const link = command === 'members' && m['state'] === 'active' ? (m['connected'] ? '  connected' : '  not connected') : '';
    process.stdout.write(`${String(m['name'])}  ${String(m['state'])}  ${String(m['address']) || '-'}  changed ${String(m['changedAt'])} by ${String(m['changedBy'])}${link}\n`);
  }
}

await main();

#!/usr/bin/env node
// replica-admin: the cluster's admin API from a shell. See `replica-admin --help`.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = `usage: replica-admin [--url URL] [--token TOKEN] <command>

commands:
  members                     list the cluster's members (GET /cluster/members)
  add <name> [<host:port>]    add a node; plexus needs its replication address (POST /cluster/members)
  remove <name>               remove a node (DELETE /cluster/members/<name>)

options:
  --url URL      a member's REST address (default: $REPLICA_URL, else http://127.0.0.1:8080)
  --token TOKEN  the admin token (default: $ADMIN_TOKEN)
  --json         print the node's answer as JSON
  --help, --version

exit status: 0 done; 1 the node refused (its error code and message are printed); 2 usage; 3 the node could not be reached`;

type Args = ReturnType<typeof parse>;

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      version: { type: 'boolean', default: false },
    },
  });
}

function usage(message: string): never {
  process.stderr.write(`replica-admin: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    usage((err as Error).message);
  }
  const { values, positionals } = args;
  if (values.help) return void process.stdout.write(`${USAGE}\n`);
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    return void process.stdout.write(`replica-admin ${pkg.version}\n`);
  }
  const url = (values.url ?? process.env['REPLICA_URL'] ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const token = values.token ?? process.env['ADMIN_TOKEN'];
  if (!token) usage('no admin token: pass --token or set ADMIN_TOKEN');
  const [command, ...rest] = positionals;
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
    case undefined:
      usage('no command');
    default:
      usage(`unknown command ${JSON.stringify(command)}`);
  }

  let res: Response;
  try {
    res = await fetch(`${url}${request.path}`, {
      method: request.method,
      headers: { authorization: `Bearer ${token}`, ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}) },
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
  const members = command === 'members' ? (body['members'] as Record<string, unknown>[]) : [body];
  for (const m of members) {
    const link = command === 'members' && m['state'] === 'active' ? (m['connected'] ? '  connected' : '  not connected') : '';
    process.stdout.write(`${String(m['name'])}  ${String(m['state'])}  ${String(m['address']) || '-'}  changed ${String(m['changedAt'])} by ${String(m['changedBy'])}${link}\n`);
  }
}

await main();

#!/usr/bin/env node
// pnpm cluster --nodes 3 --transport plexus|nats|none [--nats-mode per-write|batched] [--dir d] [--host 127.0.0.1]
// Starts the nodes, waits until every peer link is up, prints each node's URL and then
// one JSON line {"nodes":[{"name","url","pid"}, …]}; stops them all on Ctrl-C or SIGTERM.
// While it runs it reads commands on stdin: `add [seed]`, `remove <name>`, `members`, `help`.
import { createInterface } from 'node:readline';
import { parseCli, usageError } from '@replica/transport-api/cli';
import { startCluster, type ClusterTransport } from './cluster.js';

const USAGE = `usage: pnpm cluster [--nodes 3] [--transport plexus|nats|none] [--nats-mode per-write|batched]
                    [--dir DIR] [--host 127.0.0.1]
Starts n1…nN on this machine (and one nats-server per node for nats), waits until every
peer link is up, prints each node's URL, and stops everything on Ctrl-C or SIGTERM.
While it runs, commands on stdin: add [seed], remove <name>, members, help.`;
const spec = { name: 'cluster', usage: USAGE, packageJson: new URL('../package.json', import.meta.url) };
const { values } = parseCli<{ nodes: string; transport: string; dir?: string; host: string; 'nats-mode': string }>({
  ...spec,
  options: {
    nodes: { type: 'string', default: '3' },
    transport: { type: 'string', default: 'plexus' },
    dir: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'nats-mode': { type: 'string', default: 'per-write' },
  },
});
const transports: ClusterTransport[] = ['plexus', 'nats', 'none'];
const nodeCount = Number(values.nodes);
if (!/^\d+$/.test(values.nodes) || nodeCount < 1 || nodeCount > 32) usageError(spec, `--nodes must be an integer from 1 to 32, got ${JSON.stringify(values.nodes)}`);
if (values['nats-mode'] !== 'per-write' && values['nats-mode'] !== 'batched') usageError(spec, `--nats-mode must be per-write or batched, got ${JSON.stringify(values['nats-mode'])}`);
if (!transports.includes(values.transport as ClusterTransport)) usageError(spec, `--transport must be one of ${transports.join(', ')}, got ${JSON.stringify(values.transport)}`);
// Signals during start-up stop what was started as soon as it is up.
let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;
let stopping = false;
const shutdown = () => {
  stopping = true;
  if (cluster) void cluster.stop().then(() => process.exit(0));
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
cluster = await startCluster({
  nodes: nodeCount,
  transport: values.transport as ClusterTransport,
  host: values.host,
  natsMode: values['nats-mode'] === 'batched' ? 'batched' : 'per-write',
  ...(values.dir ? { dir: values.dir } : {}),
});
if (stopping) {
  await cluster.stop();
  process.exit(0);
}
for (const n of cluster.nodes) console.log(`${n.name}  ${n.url}  pid ${n.pid}  log ${n.logFile}`);
console.log(JSON.stringify({ nodes: cluster.nodes.map(({ name, url, pid }) => ({ name, url, pid })) }));

const COMMANDS = `commands: add [seed]   start one more node, added through <seed>'s admin API (default n1) and given only <seed> in PEERS
          remove <name>  remove a node from the member list (its process keeps running, refused by every member)
          members        list the member list as n1 sees it
          help`;
const running = cluster;
const index = (name: string | undefined): number => {
  const i = running.nodes.findIndex((n) => n.name === name);
  if (i < 0) throw new Error(`no node ${JSON.stringify(name)} (nodes: ${running.nodes.map((n) => n.name).join(', ')})`);
  return i;
};
const lines = createInterface({ input: process.stdin, terminal: false });
let queue = Promise.resolve();
lines.on('line', (line) => {
  const [command, arg, ...extra] = line.trim().split(/\s+/);
  queue = queue.then(async () => {
    try {
      if (extra.length > 0) throw new Error(`too many arguments\n${COMMANDS}`);
      switch (command) {
        case '':
        case undefined:
          return;
        case 'add': {
          const n = await running.add({ seed: index(arg ?? running.nodes[0]?.name) });
          console.log(`added ${n.name}  ${n.url}  pid ${n.pid}  log ${n.logFile}`);
          return;
        }
        case 'remove':
          await running.remove(index(arg));
          console.log(`removed ${String(arg)}`);
          return;
        case 'members': {
          const via = running.nodes[0] as (typeof running.nodes)[number];
          const res = await fetch(`${via.url}/cluster/members`, { headers: { authorization: `Bearer ${running.adminToken}` } });
          const body = (await res.json()) as { members: { name: string; state: string; address: string; connected: boolean }[] };
          for (const m of body.members) console.log(`${m.name}  ${m.state}  ${m.address || '-'}${m.state === 'active' ? (m.connected ? '  connected' : '  not connected') : ''}`);
          return;
        }
        case 'help':
          console.log(COMMANDS);
          return;
        default:
          throw new Error(`unknown command ${JSON.stringify(command)}\n${COMMANDS}`);
      }
    } catch (err) {
      console.error(`cluster: ${(err as Error).message}`);
    }
  });
});

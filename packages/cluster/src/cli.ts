#!/usr/bin/env node
// pnpm cluster --nodes 3 --transport plexus|nats|none [--nats-mode per-write|batched] [--dir d] [--host 127.0.0.1]
// Starts the nodes, waits until every peer link is up, prints each node's URL and then
// one JSON line {"nodes":[{"name","url","pid"}, …]}; stops them all on Ctrl-C or SIGTERM.
import { parseArgs } from 'node:util';
import { startCluster, type ClusterTransport } from './cluster.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    transport: { type: 'string', default: 'plexus' },
    dir: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'nats-mode': { type: 'string', default: 'per-write' },
  },
});
const transports: ClusterTransport[] = ['plexus', 'nats', 'none'];
if (values['nats-mode'] !== 'per-write' && values['nats-mode'] !== 'batched') {
  console.error('cluster: --nats-mode must be per-write or batched');
  process.exit(2);
}
if (!transports.includes(values.transport as ClusterTransport)) {
  console.error(`cluster: --transport must be one of ${transports.join(', ')}`);
  process.exit(2);
}
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
  nodes: Number(values.nodes),
  transport: values.transport as ClusterTransport,
  host: values.host as string,
  natsMode: values['nats-mode'] === 'batched' ? 'batched' : 'per-write',
  ...(values.dir ? { dir: values.dir } : {}),
});
if (stopping) {
  await cluster.stop();
  process.exit(0);
}
for (const n of cluster.nodes) console.log(`${n.name}  ${n.url}  pid ${n.pid}  log ${n.logFile}`);
console.log(JSON.stringify({ nodes: cluster.nodes.map(({ name, url, pid }) => ({ name, url, pid })) }));

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../src/index.js';
import { convergedAndComplete, writeLoad } from './load.js';

describe('a 2-process nats cluster with natsTls', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
  });

  it('runs every nats-server with client verification and TLS routes, and the nodes replicate through them', async () => {
    cluster = await startCluster({ nodes: 2, transport: 'nats', natsTls: true });
    const c = cluster;
    const logs = () => [...c.nodes.map((n) => n.logFile), ...c.natsServers.map((s) => s.logFile)].map((f) => `--- ${f}\n${readFileSync(f, 'utf8').split('\n').slice(-12).join('\n')}`).join('\n');
    for (const s of c.natsServers) {
      expect(s.url).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
      const config = readFileSync(s.configFile, 'utf8');
      const files = `ca_file: "${c.dir}/certs/ca.crt", cert_file: "${c.dir}/certs/nats-${s.name}.crt", key_file: "${c.dir}/certs/nats-${s.name}.key"`;
      expect(config).toContain(`\ntls { ${files}, verify: true }\n`);
      expect(config).toContain(`\n  tls { ${files} }\n`);
    }
    const { acked, failed } = await writeLoad(c, 'w', 40, 4);
    expect(failed, logs()).toBe(0);
    await convergedAndComplete(c, acked, logs);
    // Each node's connection to its server is a TLS connection with its own client certificate.
    for (const s of c.natsServers) {
      const http = /^http: "[^"]+:(\d+)"/m.exec(readFileSync(s.configFile, 'utf8'))?.[1];
      const connz = (await (await fetch(`http://127.0.0.1:${http}/connz?auth=true`)).json()) as { connections: { name?: string; tls_version?: string }[] };
      const node = connz.connections.find((x) => x.name === `replica-${s.name}`);
      expect(node?.tls_version, JSON.stringify(connz.connections)).toMatch(/^1\.[23]$/);
    }
  });
});

// The image, for real: built with podman from infra/docker/Dockerfile on a base made from
// this machine's files (no registry is reachable here; the Dockerfile takes its base as a
// build argument for that), then two containers on a podman network in the benchmarking
// range 198.18.0.0/15 replicate a write over plexus, with certificates that replica-certs
// issued inside the image, as the compose file's certs service does. Everything lives in a
// podman sandbox (test/podman.ts) that is removed at the end, also on failure.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand, ROOT } from './infra-support.js';
import { baseImageTarball, podmanSandbox, type Podman } from './podman.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root: podman networks and a storage root of its own';
  if (!hasCommand('podman')) return 'podman is not installed (scripts/setup.sh installs it: apt-get install podman runc)';
  if (!hasCommand('runc')) return 'runc is not installed (podman\'s default crun cannot run containers on this kind of machine)';
  if (!hasCommand('ldd')) return 'ldd is not installed (the local base image is made of the host\'s node and its libraries)';
  return undefined;
}
const skip = skipReason();

/** A /24 of 198.18.0.0/15 that no route of this machine overlaps (another test's namespaces may use that range too). */
function freeSubnet(): string {
  const routes = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  const taken = (octets: number[]) =>
    [...routes.matchAll(/(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?/g)].some((m) => {
      const bits = Number(m[5] ?? 32);
      const net = (Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4]);
      const ours = (octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8);
      const mask = (bits: number) => (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0);
      const common = mask(Math.min(bits, 24));
      return ((net & common) >>> 0) === ((ours & common) >>> 0);
    });
  for (let tries = 0; tries < 64; tries++) {
    const candidate = [198, 18 + (tries % 2), 100 + Math.floor(Math.random() * 150)];
    if (!taken(candidate)) return candidate.join('.');
  }
  throw new Error('no free /24 in 198.18.0.0/15');
}

async function poll<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await attempt();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(skip !== undefined)(`the node image, built and run with podman${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const id = randomBytes(3).toString('hex');
  const base = `localhost/replica-test-base:${id}`;
  const image = `localhost/replica-node-test:${id}`;
  const load = `localhost/replica-load-test:${id}`;
  const seconds: Record<string, number> = {};
  let podman: Podman | undefined;
  const timed = async <T>(what: string, f: () => Promise<T>) => {
    const t0 = Date.now();
    try {
      return await f();
    } finally {
      seconds[what] = Math.round((Date.now() - t0) / 100) / 10;
    }
  };

  beforeAll(async () => {
    podman = podmanSandbox(mkdtempSync(join(tmpdir(), 'replica-podman-')));
    const p = podman;
    await timed('base', () => p.run(['import', '--quiet', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--change', 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt', baseImageTarball(p.dir), base]));
    // docker format: the OCI format has no HEALTHCHECK
    await timed('build', () => p.run(['build', '--format', 'docker', '--build-arg', `BASE_IMAGE=${base}`, '-f', 'infra/docker/Dockerfile', '-t', image, ROOT], 480_000));
  }, 600_000);

  afterAll(async () => {
    const t0 = Date.now();
    await podman?.destroy();
    seconds['cleanup'] = Math.round((Date.now() - t0) / 100) / 10;
    console.log(`image test seconds: ${JSON.stringify(seconds)}`);
  }, 120_000);

  it('carries what the Dockerfile promises: uid 1000, the /data volume, ports 8080 and 9800, the HEALTHCHECK, the entrypoint', async () => {
    const [info] = JSON.parse(await (podman as Podman).run(['image', 'inspect', image])) as [{ Config: { User: string; ExposedPorts: Record<string, unknown>; Volumes: Record<string, unknown>; Entrypoint: string[]; Env: string[] }; Healthcheck?: { Test: string[] } }];
    expect(info.Config.User).toBe('1000:1000');
    expect(Object.keys(info.Config.ExposedPorts).sort()).toEqual(['8080/tcp', '9800/tcp']);
    expect(Object.keys(info.Config.Volumes)).toEqual(['/data']);
    expect(info.Config.Entrypoint).toEqual(['node', '/replica/node/dist/main.js']);
    expect(info.Healthcheck?.Test).toEqual(['CMD', 'node', '/replica/healthcheck.mjs']);
    expect(info.Config.Env).toEqual(expect.arrayContaining(['HOST=0.0.0.0', 'PORT=8080', 'DATA_DIR=/data']));
    // only the deployed app: no workspace sources, no build tools
    const listing = await (podman as Podman).run(['run', '--rm', '--network', 'none', '--entrypoint', 'node', image, '-e', "const fs=require('fs');console.log(JSON.stringify({app:fs.readdirSync('/replica/node').sort(),replica:fs.readdirSync('/replica/node/node_modules/@replica').sort(),src:fs.existsSync('/src'),typescript:fs.existsSync('/replica/node/node_modules/typescript')}))"]);
    expect(JSON.parse(listing.trim().split('\n').at(-1) as string)).toEqual({
      app: expect.arrayContaining(['dist', 'node_modules', 'package.json']),
      replica: ['certs', 'storage', 'transport-api', 'transport-nats', 'transport-plexus'],
      src: false,
      typescript: false,
    });
  });

  it('two containers on a podman network in 198.18.0.0/15 replicate a write over plexus, with certificates replica-certs issued in the image', async () => {
    const p = podman as Podman;
    const subnet = freeSubnet();
    const network = `replica-test-${id}`;
    await p.run(['network', 'create', '--subnet', `${subnet}.0/24`, network]);
    // the compose file's certs step: the CLI inside the image, writing as the image's user
    const certs = join(p.dir, 'certs');
    mkdirSync(certs);
    chownSync(certs, 1000, 1000);
    await timed('certs', () => p.run(['run', '--rm', '--network', 'none', '--entrypoint', 'node', '-v', `${certs}:/out`, image, '/replica/node/node_modules/@replica/certs/dist/cli.js', '--out', '/out', '--nodes', 'n1,n2', '--hosts', 'n1,n2']));
    const address = (n: number) => `${subnet}.${10 + n}`;
    await timed('start', async () => {
      for (const n of [1, 2]) {
        await p.run(['run', '-d', '--name', `replica-${id}-n${n}`, '--network', network, '--network-alias', `n${n}`, '--ip', address(n), '--health-interval', 'disable', '-v', `${certs}:/certs:ro`,
          '-e', `NODE_NAME=n${n}`, '-e', 'REPLICATION_TRANSPORT=plexus', '-e', `REPLICATION_ADVERTISE=n${n}:9800`, '-e', 'PEERS=n1@n1:9800,n2@n2:9800',
          '-e', 'TLS_CA=/certs/ca.crt', '-e', `TLS_CERT=/certs/n${n}.crt`, '-e', `TLS_KEY=/certs/n${n}.key`, image]);
      }
      // /ready answers 200 once a node reached its peer and caught up (peers found by their aliases)
      for (const n of [1, 2]) await poll(`n${n} ready`, 60_000, async () => ((await fetch(`http://${address(n)}:8080/ready`)).status === 200 ? true : undefined));
    });
    await timed('replicate', async () => {
      const put = await fetch(`http://${address(1)}:8080/items/from-n1`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Ada' }) });
      expect(put.status).toBeLessThan(300);
      // the write is acknowledged on n1; n2 has it once plexus delivered it (bounded wait)
      const record = await poll('the write on n2', 20_000, async () => {
        const res = await fetch(`http://${address(2)}:8080/items/from-n1`);
        return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
      });
      expect(record).toEqual({ id: 'from-n1', name: 'Ada' });
    });
    for (const n of [1, 2]) {
      const name = `replica-${id}-n${n}`;
      // the image's HEALTHCHECK, run by podman
      await p.run(['healthcheck', 'run', name]);
      const inside = JSON.parse((await p.run(['exec', name, 'node', '-e', "console.log(JSON.stringify({uid:process.getuid(),data:require('fs').readdirSync('/data').sort()}))"])).trim().split('\n').at(-1) as string) as unknown;
      expect(inside).toEqual({ uid: 1000, data: ['data.mdb', 'lock.mdb'] });
      const [c] = JSON.parse(await p.run(['container', 'inspect', name])) as [{ Mounts: { Type: string; Destination: string }[] }];
      expect(c.Mounts.find((m) => m.Destination === '/data')?.Type).toBe('volume');
    }
  }, 180_000);

  it('the load target builds from the same stages and its entrypoint runs the comparison', async () => {
    const p = podman as Podman;
    await timed('build load', () => p.run(['build', '--format', 'docker', '--build-arg', `BASE_IMAGE=${base}`, '--target', 'load', '-f', 'infra/docker/Dockerfile', '-t', load, ROOT], 300_000));
    const help = await p.run(['run', '--rm', '--network', 'none', load, '--help']);
    expect(help).toContain('usage: pnpm compare');
  }, 320_000);
});

// infra/compose/compose.yaml: valid against the Compose specification's schema, and each
// node of each profile given an environment that a node accepts and that points at what the
// file really runs (peers, certificates, NATS servers).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configVariables, containerConfig, hasCommand, imageEnv, INFRA, sh } from './infra-support.js';

const COMPOSE = `${INFRA}compose/compose.yaml`;

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  profiles?: string[];
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  networks?: Record<string, { aliases?: string[] } | null>;
  depends_on?: Record<string, { condition: string; required?: boolean }>;
  healthcheck?: { test: string[] };
  user?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

/** Compose files are parsed with YAML merge keys (`<<: *node`), as Compose does. */
const readCompose = (text: string) => parse(text, { merge: true }) as Compose;

/** Compose's interpolation of a value, in an environment where no variable is set. */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g, (all, _name: string | undefined, op: string | undefined, fallback: string | undefined) => {
    if (all === '$$') return '$';
    if (op === undefined) return '';
    return fallback ?? '';
  });
}

function composeSchema(): ValidateFunction {
  // dclint ships the Compose specification's JSON schema (compose-spec/compose-go's compose_spec.json)
  const file = join(dirname(createRequire(import.meta.url).resolve('dclint/package.json')), 'schemas/compose.schema.json');
  const { $schema: draft, ...schema } = JSON.parse(readFileSync(file, 'utf8')) as { $schema: string };
  // Ajv's default class is draft-07 (it knows the draft by its http:// URI only)
  if (!draft.includes('draft-07')) throw new Error(`the Compose schema is ${draft}, not draft-07: use the matching Ajv class`);
  return new Ajv({ allErrors: true, strict: false }).compile(schema);
}

/** A node: the image's default target, run as it is (the certs service runs the same image with another entrypoint). */
const isNode = (s: Service) => s.build?.dockerfile === 'infra/docker/Dockerfile' && s.build.target === undefined && s.entrypoint === undefined;
/** Names other containers reach a service by: its name and its aliases on the default network. */
const dnsNames = (name: string, s: Service) => [name, ...(s.networks?.['default']?.aliases ?? [])];
const mountTargets = (s: Service) => (s.volumes ?? []).map((v) => v.split(':')[1] as string);
const volumeAt = (s: Service, target: string) => (s.volumes ?? []).map((v) => v.split(':')).find((p) => p[1] === target)?.[0];
const envOf = (s: Service) => ({ ...imageEnv(), ...Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))])) });

describe('infra/compose/compose.yaml', () => {
  const text = readFileSync(COMPOSE, 'utf8');
  const compose = readCompose(text);
  const validate = composeSchema();
  const inProfile = (p: string) => Object.entries(compose.services).filter(([, s]) => s.profiles?.includes(p));
  const nodesOf = (p: string) => inProfile(p).filter(([, s]) => isNode(s));

  it('is valid against the Compose specification schema', () => {
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it('the schema check fails on a wrong compose file: an unknown service key, a wrong depends_on condition', () => {
    const typo = readCompose(text);
    (typo.services['plexus-n1'] as Record<string, unknown>)['enviroment'] = { NODE_NAME: 'n1' };
    expect(validate(typo)).toBe(false);
    const condition = readCompose(text);
    (condition.services['plexus-n1'] as Service).depends_on = { 'plexus-certs': { condition: 'service_done' } };
    expect(validate(condition)).toBe(false);
  });

  it('every node is in exactly one of the profiles plexus and nats, and every other service is profile-gated too', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.profiles, name).toBeDefined();
      if (isNode(s)) expect(s.profiles?.filter((p) => p === 'plexus' || p === 'nats'), name).toHaveLength(1);
    }
    expect(nodesOf('plexus')).toHaveLength(3);
    expect(nodesOf('nats')).toHaveLength(3);
  });

  it('sets on the nodes only environment variables a node reads', () => {
    const known = configVariables();
    for (const [name, s] of Object.entries(compose.services).filter(([, s]) => isNode(s))) {
      for (const key of Object.keys(s.environment ?? {})) expect(known, `${name}: ${key}`).toContain(key);
    }
  });

  it('publishes the nodes\' REST ports on loopback only, one host port per node of a profile', () => {
    for (const p of ['plexus', 'nats']) {
      const ports = nodesOf(p).flatMap(([, s]) => s.ports ?? []);
      expect(ports).toHaveLength(3);
      for (const port of ports) expect(port).toMatch(/^127\.0\.0\.1:\d+:8080$/);
      expect(new Set(ports).size).toBe(3);
    }
  });

  describe('profile plexus', () => {
    const certs = compose.services['plexus-certs'] as Service;
    const nodes = nodesOf('plexus');

    it('a one-shot service issues the CA and one certificate per node into a volume per node, keeping the CA key to itself', () => {
      expect(certs.profiles).toEqual(['plexus']);
      const script = (certs.command ?? []).join('\n');
      const names = nodes.map(([, s]) => envOf(s)['NODE_NAME']);
      expect(script).toContain(`@replica/certs/dist/cli.js --out /ca --nodes ${names.join(',')}`);
      const caVolume = volumeAt(certs, '/ca');
      expect(caVolume).toBeDefined();
      for (const [name, s] of nodes) {
        expect(mountTargets(s).map((t) => volumeAt(s, t)), `${name} must not mount the CA key`).not.toContain(caVolume);
        expect(s.depends_on?.['plexus-certs'], name).toEqual({ condition: 'service_completed_successfully' });
      }
    });

    it.each([0, 1, 2])('node %i loads a plexus configuration: peers every other node at a name and port it answers on, advertises its own, TLS files its certificate volume holds', (i) => {
      const [name, s] = nodes[i] as [string, Service];
      const env = envOf(s);
      const { config, problems } = containerConfig(env, mountTargets(s));
      expect(problems, name).toEqual([]);
      if (config?.transport.kind !== 'plexus') throw new Error(`${name} is not a plexus node`);
      const others = nodes.filter(([n]) => n !== name);
      expect(config.transport.peers.map((p) => p.name).sort()).toEqual(others.map(([, o]) => envOf(o)['NODE_NAME']).sort());
      for (const peer of config.transport.peers) {
        const [peerService, target] = others.find(([, o]) => envOf(o)['NODE_NAME'] === peer.name) as [string, Service];
        expect(dnsNames(peerService, target), `${name} dials ${peer.name} at ${peer.host}`).toContain(peer.host);
        expect(peer.port).toBe(Number(envOf(target)['REPLICATION_PORT']));
      }
      const [host, port] = config.transport.advertise.split(':');
      expect(dnsNames(name, s)).toContain(host);
      expect(Number(port)).toBe(config.transport.listen.port);
      // the certificate files: in the volume the certs service fills for this node, named after it
      const certsAt = '/certs';
      const volume = volumeAt(s, certsAt);
      expect(certs.volumes?.some((v) => v.startsWith(`${volume}:`)), `${volume} is written by plexus-certs`).toBe(true);
      expect([env['TLS_CA'], env['TLS_CERT'], env['TLS_KEY']]).toEqual([`${certsAt}/ca.crt`, `${certsAt}/${config.nodeName}.crt`, `${certsAt}/${config.nodeName}.key`]);
      expect(s.volumes).toContain(`${volume}:${certsAt}:ro`);
    });
  });

  describe('profile nats', () => {
    const servers = inProfile('nats').filter(([, s]) => s.image?.startsWith('nats:'));
    const nodes = nodesOf('nats');
    const conf = readFileSync(`${INFRA}compose/nats.conf`, 'utf8');

    it('three nats-servers from the NATS project\'s image, clustered with routes to all three, JetStream on their volume', () => {
      expect(servers.map(([n]) => n)).toEqual(['nats1', 'nats2', 'nats3']);
      const routes = /routes:\s*\[([^\]]*)\]/.exec(conf)?.[1]?.split(',').map((r) => r.trim().replace(/"/g, ''));
      expect(routes).toEqual(servers.map(([n]) => `nats-route://${n}:6222`));
      expect(conf).toMatch(/jetstream\s*\{[^}]*store_dir:\s*"\/data"/);
      expect(conf).toMatch(/server_tags:\s*\[\$NATS_SERVER_NAME\]/);
      for (const [name, s] of servers) {
        expect(s.image).toMatch(/^nats:2\.\d+/);
        expect(s.environment?.['NATS_SERVER_NAME']).toBe(name);
        const configPath = s.command?.[s.command.indexOf('--config') + 1];
        expect(s.volumes).toContain(`./nats.conf:${configPath}:ro`);
        expect(mountTargets(s)).toContain('/data');
        expect(s.healthcheck?.test.join(' ')).toContain('/healthz');
      }
    });

    it.each([0, 1, 2])('node %i loads a nats configuration: its own server first then the others, its stream placed on its own server\'s tag', (i) => {
      const [name, s] = nodes[i] as [string, Service];
      const { config, problems } = containerConfig(envOf(s), mountTargets(s));
      expect(problems, name).toEqual([]);
      if (config?.transport.kind !== 'nats') throw new Error(`${name} is not a nats node`);
      const own = servers[i]?.[0] as string;
      const cluster = /cluster\s*\{[^}]*name:\s*"([^"]+)"/.exec(conf)?.[1];
      expect(config.transport.servers[0]).toBe(`nats://${own}:4222`);
      expect([...config.transport.servers].sort()).toEqual(servers.map(([n]) => `nats://${n}:4222`).sort());
      expect(config.transport.placement).toEqual({ cluster, tag: own });
      for (const [server] of servers) expect(s.depends_on?.[server], `${name} waits for ${server}`).toEqual({ condition: 'service_healthy' });
    });

    it.skipIf(!hasCommand('nats-server'))('nats.conf is a configuration nats-server accepts for each server (nats-server -t)', async () => {
      for (const [name] of servers) {
        const out = await sh('nats-server', ['-t', '-c', `${INFRA}compose/nats.conf`], { env: { ...process.env, NATS_SERVER_NAME: name }, stderr: true });
        expect(out).toContain('is valid');
      }
    });
  });

  describe('the load service', () => {
    const load = compose.services['load'] as Service;
    let urls: string[] = [];
    beforeAll(() => {
      urls = (load.command?.[load.command.indexOf('--urls') + 1] ?? '').split(',');
    });

    it('runs only with its own profile, from the image\'s load target', () => {
      expect(load.profiles).toEqual(['load']);
      expect(load.build).toEqual({ context: '../..', dockerfile: 'infra/docker/Dockerfile', target: 'load' });
    });

    it('sends the load to every node of either profile, at a name it answers on, once the nodes are healthy', () => {
      for (const p of ['plexus', 'nats']) {
        const nodes = nodesOf(p);
        expect(urls).toHaveLength(nodes.length);
        for (const url of urls) {
          const u = new URL(url);
          const node = nodes.find(([n, s]) => dnsNames(n, s).includes(u.hostname));
          expect(node, `${url} in profile ${p}`).toBeDefined();
          expect(u.port).toBe(envOf((node as [string, Service])[1])['PORT']);
        }
        for (const [n] of nodes) expect(load.depends_on?.[n]).toEqual({ condition: 'service_healthy', required: false });
      }
    });
  });
});

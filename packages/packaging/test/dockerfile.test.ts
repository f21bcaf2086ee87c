// infra/docker/Dockerfile linted: dockerfile-utils' validator (the Docker language
// server's), then what the image promises, read from the parsed Dockerfile (dockerfile-ast):
// a base image that is a build argument, pnpm pinned to the repository's version, only the
// deployed node app in the final image, a non-root user, the data volume, the ports, the
// HEALTHCHECK. Then the health check script and the probe paths against a live node.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { startCluster, type Cluster } from '@replica/cluster';
import { Arg, DockerfileParser, Env, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configVariables, INFRA, ROOT } from './infra-support.js';
import { renderKustomization } from './kustomize.js';

const DOCKERFILE = `${INFRA}docker/Dockerfile`;
const text = readFileSync(DOCKERFILE, 'utf8');
const instructions = DockerfileParser.parse(text).getInstructions();

interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** The build stages in order, each with its own instructions (FROM excluded). */
function stages(): Stage[] {
  const out: Stage[] = [];
  for (const i of instructions) {
    if (i.getKeyword() === 'FROM') {
      const [from, as, name] = i.getArguments().map((a) => a.getValue());
      expect(as?.toUpperCase(), `every stage is named: FROM ${from}`).toBe('AS');
      out.push({ name: name as string, from: from as string, instructions: [] });
    } else out.at(-1)?.instructions.push(i);
  }
  return out;
}

const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const flags = (i: Instruction) => Object.fromEntries(((i as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags?.() ?? []).map((f) => [f.getName(), f.getValue()]));
const ofKind = (s: Stage, keyword: string) => s.instructions.filter((i) => i.getKeyword() === keyword);
/** A JSON (exec) form instruction's strings; undefined for the shell form. */
function execForm(i: Instruction): string[] | undefined {
  const raw = i.getRawArgumentsContent() ?? '';
  const json = raw.replace(/^(--\S+\s+)*(CMD\s+)?/, '');
  if (!json.startsWith('[')) return undefined;
  return JSON.parse(json) as string[];
}
function stageEnv(s: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of s.instructions) if (i instanceof Env) for (const p of i.getProperties()) env[p.getName()] = p.getValue() ?? '';
  return env;
}

/** Whether a .dockerignore pattern list excludes `path` (a pattern excludes what it matches and everything below). */
function ignored(patterns: readonly string[], path: string): boolean {
  return patterns.some((p) => {
    const re = p
      .replace(/^\//, '')
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*\*\//g, '\u0000')
      .replace(/\*/g, '[^/]*')
      .replace(/\u0000/g, '(?:.*/)?');
    return new RegExp(`^${re}(?:/.*)?$`).test(path);
  });
}

describe('infra/docker/Dockerfile', () => {
  const all = stages();
  const stage = (name: string) => all.find((s) => s.name === name) as Stage;
  const node = all.at(-1) as Stage;

  it('passes the Dockerfile validator without a diagnostic, which does report a broken Dockerfile', () => {
    expect(validate(text)).toEqual([]);
    expect(validate('FROM node:20-slim\nRUNN echo\nEXPOSE http\n').length).toBeGreaterThan(0);
  });

  it('takes its base image as the build argument BASE_IMAGE, the official Node.js 20 slim image by default, in every stage', () => {
    const [first] = instructions;
    expect(first).toBeInstanceOf(Arg);
    expect(args(first as Instruction)).toEqual(['BASE_IMAGE=node:20-slim']);
    const names = new Set<string>();
    for (const s of all) {
      expect(s.from === '${BASE_IMAGE}' || names.has(s.from), `stage ${s.name} is FROM ${s.from}`).toBe(true);
      names.add(s.name);
    }
  });

  it('builds the node by default (the last stage) and the load generator only as --target load', () => {
    expect(all.map((s) => s.name)).toEqual(['build', 'load-build', 'load', 'node']);
    expect(node.name).toBe('node');
  });

  it('installs pnpm at the repository\'s version, from the lockfile as it is, and never adds files from URLs or fetches with curl or wget', () => {
    const pinned = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { packageManager: string }).packageManager.replace(/^pnpm@/, '');
    const build = stage('build');
    expect(build.instructions.filter((i) => i instanceof Arg).map(args).flat()).toContain(`PNPM_VERSION=${pinned}`);
    const runs = ofKind(build, 'RUN').map((i) => i.getRawArgumentsContent() ?? '');
    expect(runs.filter((r) => /npm install -g/.test(r))).toEqual([expect.stringContaining('"pnpm@${PNPM_VERSION}"')]);
    expect(runs.filter((r) => /pnpm install/.test(r)).every((r) => r.includes('--frozen-lockfile'))).toBe(true);
    expect(instructions.filter((i) => i.getKeyword() === 'ADD')).toEqual([]);
    for (const i of instructions.filter((x) => x.getKeyword() === 'RUN')) expect(i.getRawArgumentsContent()).not.toMatch(/\b(curl|wget)\b/);
  });

  it('ships only the deployed node app (pnpm deploy --prod) and its health check script in the final image', () => {
    const deploy = ofKind(stage('build'), 'RUN').map((i) => i.getRawArgumentsContent() ?? '').find((r) => r.includes('@replica/node deploy'));
    const out = /deploy --prod .*?(\/\S+)\s*$/.exec(deploy ?? '')?.[1];
    expect(out).toBe('/out/node');
    const copies = ofKind(node, 'COPY');
    expect(copies.filter((c) => flags(c)['from'] !== undefined).map((c) => [flags(c)['from'], args(c)[0]])).toEqual([['build', out]]);
    const dockerignore = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const c of copies.filter((x) => flags(x)['from'] === undefined)) {
      const source = args(c)[0] as string;
      expect(existsSync(`${ROOT}${source}`), source).toBe(true);
      expect(ignored(dockerignore, source), `${source} is excluded by .dockerignore`).toBe(false);
    }
  });

  it('.dockerignore keeps installed modules, builds, data, results and history out of the build context', () => {
    const patterns = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const path of ['node_modules', 'apps/node/node_modules', 'packages/storage/dist', 'apps/node/tsconfig.tsbuildinfo', '.git', 'data', 'apps/node/data', 'bench/results', 'packages/faults/results']) {
      expect(ignored(patterns, path), path).toBe(true);
    }
    for (const path of ['pnpm-lock.yaml', 'apps/node/src/main.ts', 'packages/storage/package.json', 'infra/docker/healthcheck.mjs', 'packages/storage/src/data.ts']) {
      expect(ignored(patterns, path), path).toBe(false);
    }
  });

  it('runs the node and the load generator as a non-root numeric user (Kubernetes can check runAsNonRoot against it)', () => {
    for (const s of [node, stage('load')]) {
      const user = ofKind(s, 'USER').at(-1);
      expect(user, s.name).toBeDefined();
      const [uid, gid] = (args(user as Instruction)[0] as string).split(':');
      expect(uid, s.name).toMatch(/^[1-9]\d*$/);
      expect(gid ?? '1', s.name).toMatch(/^[1-9]\d*$/);
    }
  });

  it('configures the node only by variables it reads, keeps DATA_DIR in a volume, exposes PORT and REPLICATION_PORT', () => {
    const env = stageEnv(node);
    const known = configVariables();
    for (const key of Object.keys(env)) expect(known, key).toContain(key);
    const volumes = ofKind(node, 'VOLUME').flatMap((v) => execForm(v) ?? args(v));
    expect(volumes).toContain(env['DATA_DIR']);
    const exposed = ofKind(node, 'EXPOSE').flatMap(args);
    expect(exposed).toEqual(expect.arrayContaining([env['PORT'], env['REPLICATION_PORT']]));
    expect(env['HOST']).toBe('0.0.0.0');
  });

  it('checks its health with node running the script it copies in, and starts the deployed main.js in exec form', () => {
    const [health] = ofKind(node, 'HEALTHCHECK');
    const cmd = execForm(health as Instruction);
    expect(cmd?.[0]).toBe('node');
    const copied = ofKind(node, 'COPY').map(args).find(([, to]) => to === cmd?.[1]);
    expect(copied?.[0]).toBe('infra/docker/healthcheck.mjs');
    const entry = execForm(ofKind(node, 'ENTRYPOINT').at(-1) as Instruction);
    const deployedTo = ofKind(node, 'COPY').map(args).find(([from]) => from === '/out/node')?.[1];
    expect(entry).toEqual(['node', `${deployedTo}/dist/main.js`]);
    const load = execForm(ofKind(stage('load'), 'ENTRYPOINT').at(-1) as Instruction);
    expect(load).toEqual(['node', 'bench/dist/compare.js']);
  });
});

describe('the health check script and the probe paths, on a live plexus node', () => {
  const run = promisify(execFile);
  const health = (env: Record<string, string>) =>
    run('node', [`${INFRA}docker/healthcheck.mjs`], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 10_000 }).then(
      () => 0,
      (err: { code?: number }) => err.code ?? -1,
    );
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    // startCluster returns once every node answers /ready (caught up with its peer)
    cluster = await startCluster({ nodes: 2, transport: 'plexus' });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('healthcheck.mjs exits 0 against a serving node (HOST 0.0.0.0 or an address) and 1 where nothing answers', async () => {
    const url = new URL(cluster?.nodes[0]?.url as string);
    expect(await health({ HOST: '0.0.0.0', PORT: url.port })).toBe(0);
    expect(await health({ HOST: url.hostname, PORT: url.port })).toBe(0);
    await cluster?.stop();
    cluster = undefined;
    expect(await health({ HOST: '0.0.0.0', PORT: url.port })).toBe(1);
  }, 30_000);

  it('the Kubernetes probes\' and scrape annotation\'s paths answer 200', async () => {
    cluster ??= await startCluster({ nodes: 2, transport: 'plexus' });
    const sts = renderKustomization(`${INFRA}k8s/base`).find((o) => o.kind === 'StatefulSet');
    const pod = (sts?.['spec'] as { template: { metadata: { annotations: Record<string, string> }; spec: { containers: { readinessProbe: { httpGet: { path: string } }; livenessProbe: { httpGet: { path: string } } }[] } } }).template;
    const [c] = pod.spec.containers;
    const paths = [c?.readinessProbe.httpGet.path, c?.livenessProbe.httpGet.path, pod.metadata.annotations['prometheus.io/path']];
    for (const n of cluster.nodes) for (const path of paths) expect((await fetch(`${n.url}${path}`)).status, `${n.name} ${path}`).toBe(200);
  }, 60_000);
});

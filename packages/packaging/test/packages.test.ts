// What the libraries ship, checked as a user receives it: each library packed with
// `pnpm pack` (workspace:^ turned into a version range), linted with publint and
// arethetypeswrong, and the embedded example installed from the tarballs with npm into
// a project outside the workspace, type-checked strictly and run.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = fileURLToPath(new URL('../node_modules/.bin/', import.meta.url));

/** Every library a user may install, by its directory. */
const LIBRARIES = {
  '@replica/transport-api': 'packages/transport-api',
  '@replica/storage': 'packages/storage',
  '@replica/transport-memory': 'packages/transport-memory',
  '@replica/certs': 'packages/certs',
  '@replica/transport-plexus': 'packages/transport-plexus',
  '@replica/transport-nats': 'packages/transport-nats',
  '@replica/cluster': 'packages/cluster',
  '@replica/node': 'apps/node',
} as const;
type Library = keyof typeof LIBRARIES;

/** Runs a command; on failure, the error carries its whole output. */
async function sh(cmd: string, args: readonly string[], cwd: string, timeoutMs = 180_000): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } });
    return stdout + stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

const rootVersions = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies as Record<string, string>;

describe('the packed libraries', () => {
  let packs = '';
  const tarball = {} as Record<Library, string>;

  beforeAll(async () => {
    packs = mkdtempSync(join(tmpdir(), 'replica-packs-'));
    for (const [name, dir] of Object.entries(LIBRARIES) as [Library, string][]) {
      const before = new Set(readdirSync(packs));
      await sh('pnpm', ['pack', '--pack-destination', packs], join(ROOT, dir));
      const made = readdirSync(packs).filter((f) => !before.has(f) && f.endsWith('.tgz'));
      expect(made, `pnpm pack of ${name}`).toHaveLength(1);
      tarball[name] = join(packs, made[0] as string);
    }
  }, 300_000);
  afterAll(() => {
    if (packs) rmSync(packs, { recursive: true, force: true });
  });

  it.each(Object.keys(LIBRARIES) as Library[])('%s passes publint (strict) and arethetypeswrong (ESM-only profile)', async (name) => {
    const lint = await sh(join(BIN, 'publint'), ['run', '--strict', tarball[name]], ROOT);
    expect(lint).toContain('All good!');
    // exits non-zero on any problem the profile does not ignore
    await sh(join(BIN, 'attw'), [tarball[name], '--profile', 'esm-only', '--no-emoji', '--no-color'], ROOT);
  });

  it('every library declares its licence, engines, side effects and a README, and ranges instead of workspace links', async () => {
    for (const [name, file] of Object.entries(tarball)) {
      const listing = await sh('tar', ['tzf', file], ROOT);
      expect(listing, name).toContain('package/LICENSE');
      expect(listing, name).toContain('package/README.md');
      expect(listing, name).not.toMatch(/\.test\.ts|tsbuildinfo/);
      const pkg = JSON.parse(await sh('tar', ['xzOf', file, 'package/package.json'], ROOT)) as Record<string, unknown>;
      expect(pkg.license, name).toBe('MIT');
      expect(pkg.private, name).toBeUndefined();
      expect(pkg.engines, name).toEqual({ node: '>=20.19.0 <21 || >=22.12.0' });
      expect(pkg.sideEffects, name).toBeDefined();
      expect(JSON.stringify(pkg), name).not.toContain('workspace:');
      // every command starts with its interpreter line (npm links it executable)
      for (const [bin, path] of Object.entries((pkg.bin ?? {}) as Record<string, string>)) {
        const head = (await sh('tar', ['xzOf', file, `package/${path.replace(/^\.\//, '')}`], ROOT)).split('\n')[0];
        expect(head, `${name} ${bin}`).toBe('#!/usr/bin/env node');
      }
    }
  });

  describe('installed with npm outside the workspace', () => {
    let project = '';
    beforeAll(() => {
      project = mkdtempSync(join(tmpdir(), 'replica-embedded-'));
      cpSync(join(ROOT, 'examples/embedded'), project, { recursive: true, filter: (src) => !/node_modules|dist$/.test(src) });
      // the example depends on ranges of the published packages; here they come from the tarballs
      const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      pkg.dependencies = {};
      writeFileSync(join(project, 'package.json'), JSON.stringify(pkg, null, 2));
    });
    afterAll(() => {
      if (project) rmSync(project, { recursive: true, force: true });
    });

    const npmInstall = (args: readonly string[]) => sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...args], project, 300_000);

    it('storage + transport-plexus pull no x509 tooling (@peculiar/*, tsyringe) unless @replica/certs is installed', async () => {
      await npmInstall([tarball['@replica/transport-api'], tarball['@replica/storage'], tarball['@replica/transport-plexus']]);
      expect(existsSync(join(project, 'node_modules/@replica/transport-plexus/dist/index.js'))).toBe(true);
      expect(existsSync(join(project, 'node_modules/@peculiar'))).toBe(false);
      expect(existsSync(join(project, 'node_modules/tsyringe'))).toBe(false);
      // one copy of the contract: a peer dependency, not one per library
      expect(existsSync(join(project, 'node_modules/@replica/storage/node_modules/@replica/transport-api'))).toBe(false);
      expect(existsSync(join(project, 'node_modules/@replica/transport-plexus/node_modules/@replica/transport-api'))).toBe(false);
      await npmInstall([tarball['@replica/certs']]);
      expect(existsSync(join(project, 'node_modules/@peculiar/x509'))).toBe(true);
    }, 600_000);

    it('examples/embedded type-checks strictly against the installed types, runs, and replicates one write', async () => {
      await npmInstall(['--save-dev', `typescript@${rootVersions.typescript}`, `@types/node@${rootVersions['@types/node']}`]);
      await sh(join(project, 'node_modules/.bin/tsc'), ['-p', '.'], project);
      const out = (await sh('node', ['dist/service.js'], project, 60_000)).trim().split('\n');
      expect(JSON.parse(out[0] as string)).toEqual({ confirmed: 1, onB: { id: 'u1', name: 'Ada' } });
      expect(JSON.parse(out[1] as string)).toEqual({ refused: 'REPLICA_ERR_RECORD_EXISTS' });
    }, 600_000);

    it('replica-certs is installed as an executable with its shebang', async () => {
      const version = JSON.parse(readFileSync(join(ROOT, 'packages/certs/package.json'), 'utf8')).version as string;
      expect((await sh(join(project, 'node_modules/.bin/replica-certs'), ['--version'], project)).trim()).toBe(`replica-certs ${version}`);
    });
  });
});

// Podman for the image test, kept to itself: every image, container, volume, network and
// build cache lives under one temporary directory (its own storage root, run root, network
// configuration and TMPDIR), so that removing that directory leaves nothing behind and
// nothing of other podman users is touched. Runtime runc and this machine's
// containers.conf settings per shared/TOOLCHAIN.md ("Containers").
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { sh } from './infra-support.js';

export interface Podman {
  readonly dir: string;
  /** Runs `podman <args>` in this sandbox; resolves to its output. */
  run(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Removes everything made in the sandbox, then the sandbox itself. Never throws. */
  destroy(): Promise<void>;
}

export function podmanSandbox(dir: string): Podman {
  for (const d of ['storage', 'run', 'libpod', 'networks', 'tmp']) mkdirSync(join(dir, d), { recursive: true });
  // crun fails here ("cgroups in hybrid mode"), and the default ulimits cannot be set
  writeFileSync(join(dir, 'containers.conf'), '[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n');
  const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf'), TMPDIR: join(dir, 'tmp') };
  const global = ['--runtime', 'runc', '--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--tmpdir', join(dir, 'libpod'), '--network-config-dir', join(dir, 'networks')];
  const run = (args: readonly string[], timeoutMs = 120_000) => sh('podman', [...global, ...args], { env, timeoutMs });
  const quiet = (args: readonly string[]) => run(args).catch(() => '');
  return {
    dir,
    run,
    async destroy() {
      const containers = (await quiet(['ps', '-aq'])).split('\n').filter(Boolean);
      if (containers.length > 0) await quiet(['rm', '-f', '-v', '-t', '2', ...containers]);
      for (const net of (await quiet(['network', 'ls', '--format', '{{.Name}}'])).split('\n').filter((n) => n && n !== 'podman')) await quiet(['network', 'rm', '-f', net]);
      await quiet(['volume', 'prune', '-f']);
      await quiet(['rmi', '-a', '-f']);
      // storage may still hold mounts (overlay, shm): unmount what lies under the sandbox before removing it
      const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(`${dir}/`));
      for (const m of mounts.reverse()) {
        try {
          execFileSync('umount', ['-l', m], { stdio: 'ignore' });
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The shared libraries `ldd` lists for a binary, as absolute paths. */
function libraries(binary: string): string[] {
  return execFileSync('ldd', [binary], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /(\/\S+)/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
}

const which = (cmd: string) => execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();

/**
 * A root filesystem tarball standing in for node:20-slim, from this machine's own files
 * (no registry is reachable): its node and npm, a shell and the few tools that RUN steps
 * and pnpm's bin shims use, the libraries all of them (and pnpm's native binary) link,
 * the CA file this machine trusts, and a `node` user with uid 1000 as the official image
 * has. Returns the tarball's path.
 */
export function baseImageTarball(dir: string): string {
  const tools = ['node', 'sh', 'env', 'mkdir', 'chown', 'chmod', 'readlink', 'sed', 'uname', 'cat', 'rm', 'cp', 'ln', 'ls', 'mv', 'dirname', 'tr'];
  const files = new Set<string>(['bin', 'lib', 'lib64', 'sbin'].filter((l) => realpathSync(`/${l}`) !== `/${l}`).map((l) => `/${l}`));
  // each path through its canonical directory (the file itself may be a link: kept, and its target too),
  // so that no archive entry passes through a linked directory such as /lib64
  const add = (path: string) => {
    files.add(join(realpathSync(dirname(path)), basename(path)));
    files.add(realpathSync(path));
  };
  const binaries = tools.map(which);
  // pnpm 12 is a native binary: the image installs it, this machine's copy only says which libraries it needs
  try {
    binaries.push(realpathSync(which('pnpm')));
  } catch {
    // without a local pnpm, its libraries are those node needs
  }
  for (const b of binaries) {
    add(b);
    for (const lib of libraries(realpathSync(b))) add(lib);
  }
  const npmCli = realpathSync(which('npm'));
  const npmRoot = dirname(dirname(npmCli));
  const staging = join(dir, 'base-root');
  for (const d of ['etc/ssl/certs', 'tmp', 'root', 'home/node']) mkdirSync(join(staging, d), { recursive: true });
  chmodSync(join(staging, 'tmp'), 0o1777);
  chownSync(join(staging, 'home/node'), 1000, 1000);
  writeFileSync(join(staging, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n');
  writeFileSync(join(staging, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
  copyFileSync('/etc/ssl/certs/ca-certificates.crt', join(staging, 'etc/ssl/certs/ca-certificates.crt'));
  const tarball = join(dir, 'base.tar');
  const rel = (p: string) => p.replace(/^\//, '');
  execFileSync('tar', ['-C', '/', '-cf', tarball, '--no-recursion', ...[...files].map(rel)]);
  execFileSync('tar', ['-C', '/', '-rf', tarball, rel(realpathSync(npmRoot)), rel(join(realpathSync(dirname(which('npm'))), 'npm'))]);
  execFileSync('tar', ['-C', staging, '-rf', tarball, '.']);
  return tarball;
}

// The deployment files in infra/ are checked by the tools that will read them.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SYSTEMD = fileURLToPath(new URL('../../../infra/systemd/', import.meta.url));

async function hasCommand(cmd: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${cmd}`]).then(
    () => true,
    () => false,
  );
}

describe('infra/systemd', () => {
  it('the unit passes systemd-analyze verify without a warning', async (ctx) => {
    if (!(await hasCommand('systemd-analyze'))) ctx.skip('systemd-analyze is not installed here');
    const { stdout, stderr } = await run('systemd-analyze', ['verify', `${SYSTEMD}replica-node.service`]);
    expect(stdout + stderr).toBe('');
  });

  it('the unit restarts on failure but not on a configuration error, and is hardened', async () => {
    const { readFileSync } = await import('node:fs');
    const unit = readFileSync(`${SYSTEMD}replica-node.service`, 'utf8');
    for (const line of ['Restart=on-failure', 'RestartPreventExitStatus=2', 'LimitNOFILE=65536', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/replica', 'EnvironmentFile=/etc/replica/replica-node.env', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      expect(unit.split('\n'), line).toContain(line);
    }
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@replica/transport-api';
import { loadConfig } from '../src/index.js';

/** A temp dir (removed after the enclosing suite) and a maker of placeholder PEM files in it. */
function pemFiles(prefix: string): { dir: string; pem: (name: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const pem = (name: string) => {
    const p = join(dir, name);
    writeFileSync(p, 'pem');
    return p;
  };
  return { dir, pem };
}

describe('loadConfig', () => {
  it('has safe defaults for a standalone node', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      nodeName: 'standalone',
      host: '127.0.0.1',
      port: 8080,
      durability: 'committed',
      bodyLimit: 1024 * 1024,
      apiToken: undefined,
      confirmTimeoutMs: 5000,
      flowControl: undefined,
      transport: { kind: 'none' },
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.retention)).toBe(true);
  });

  it('reads every setting', () => {
    const c = loadConfig({
      NODE_NAME: 'n1',
      HOST: '0.0.0.0',
      PORT: '9000',
      DATA_DIR: '/var/lib/replica',
      WRITE_DURABILITY: 'flushed',
      LOG_RETENTION_ENTRIES: '500',
      LOG_RETENTION_MS: '60000',
      BODY_LIMIT: '2048',
      API_TOKEN: 'a-long-enough-token',
      CONFIRM_TIMEOUT_MS: '250',
      LOG_LEVEL: 'warn',
      LOG_PRUNE_INTERVAL_MS: '500',
      CLOCK_OFFSET_MS: '-90000',
    });
    expect(c).toMatchObject({
      pruneIntervalMs: 500,
      clockOffsetMs: -90000,
      nodeName: 'n1',
      host: '0.0.0.0',
      port: 9000,
      dataDir: '/var/lib/replica',
      durability: 'flushed',
      retention: { maxEntries: 500, maxAgeMs: 60000 },
      bodyLimit: 2048,
      apiToken: 'a-long-enough-token',
      confirmTimeoutMs: 250,
      logLevel: 'warn',
    });
  });

  it('reports every problem at once', () => {
    let err: unknown;
    try {
      loadConfig({ NODE_NAME: 'bad name!', PORT: '70000', WRITE_DURABILITY: 'maybe', API_TOKEN: 'short', REPLICATION_TRANSPORT: 'carrier-pigeon' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/NODE_NAME/);
    expect(problems.join('\n')).toMatch(/PORT must be an integer from 0 to 65535, got "70000"/);
    expect(problems.join('\n')).toMatch(/WRITE_DURABILITY must be one of committed, flushed/);
    expect(problems.join('\n')).toMatch(/API_TOKEN must be at least 16/);
    expect(problems.join('\n')).toMatch(/REPLICATION_TRANSPORT must be one of none, plexus, nats, got "carrier-pigeon"/);
    expect((err as ConfigError).code).toBe('REPLICA_ERR_CONFIG_INVALID');
  });

  it('takes a signed clock offset of at most a day, and nothing else', () => {
    expect(loadConfig({}).clockOffsetMs).toBe(0);
    expect(loadConfig({ CLOCK_OFFSET_MS: '120000' }).clockOffsetMs).toBe(120000);
    for (const bad of ['+5', '1e3', '86400001', '-86400001', 'soon', '1.5']) {
      expect(() => loadConfig({ CLOCK_OFFSET_MS: bad }), bad).toThrow(/CLOCK_OFFSET_MS must be an integer from -86400000 to 86400000/);
    }
    expect(() => loadConfig({ LOG_PRUNE_INTERVAL_MS: '10' })).toThrow(/LOG_PRUNE_INTERVAL_MS must be an integer from 100/);
  });

  it('takes the free-space floor as bytes or a share of the filesystem, by default 5 % capped at 1 GiB', () => {
    expect(loadConfig({}).minFree).toEqual({ share: 0.05, maxBytes: 1024 ** 3 });
    expect(loadConfig({ MIN_FREE_BYTES: '0' }).minFree).toEqual({ bytes: 0 });
    expect(loadConfig({ MIN_FREE_BYTES: '104857600' }).minFree).toEqual({ bytes: 104_857_600 });
    expect(loadConfig({ MIN_FREE_BYTES: '10%' }).minFree).toEqual({ share: 0.1 });
    expect(loadConfig({ MIN_FREE_BYTES: '2.5%' }).minFree).toEqual({ share: 0.025 });
    for (const bad of ['0%', '51%', '-1', '1e9', '5 %', '100MB', 'lots']) {
      expect(() => loadConfig({ MIN_FREE_BYTES: bad }), bad).toThrow(/MIN_FREE_BYTES must be a number of bytes \(0 for no floor\) or a percentage/);
    }
  });

  it('turns flow control on with MAX_REPLICATION_LAG_MS, the hard limit 4 times it unless set above it', () => {
    expect(loadConfig({ MAX_REPLICATION_LAG_MS: '0' }).flowControl).toBeUndefined();
    expect(loadConfig({ MAX_REPLICATION_LAG_MS: '' }).flowControl).toBeUndefined();
    expect(loadConfig({ MAX_REPLICATION_LAG_MS: '500' }).flowControl).toEqual({ targetMs: 500, hardMs: 2000 });
    expect(loadConfig({ MAX_REPLICATION_LAG_MS: '500', MAX_REPLICATION_LAG_HARD_MS: '501' }).flowControl).toEqual({ targetMs: 500, hardMs: 501 });
    expect(Object.isFrozen(loadConfig({ MAX_REPLICATION_LAG_MS: '500' }).flowControl)).toBe(true);
    const cases: [Record<string, string>, RegExp][] = [
      [{ MAX_REPLICATION_LAG_MS: '5' }, /MAX_REPLICATION_LAG_MS must be 0 \(off\) or from 10 to 86400000, got "5"/],
      [{ MAX_REPLICATION_LAG_MS: '1s' }, /MAX_REPLICATION_LAG_MS must be an integer from 0 to 86400000, got "1s"/],
      [{ MAX_REPLICATION_LAG_MS: '90000000' }, /MAX_REPLICATION_LAG_MS must be an integer/],
      [{ MAX_REPLICATION_LAG_MS: '500', MAX_REPLICATION_LAG_HARD_MS: '500' }, /MAX_REPLICATION_LAG_HARD_MS must be greater than MAX_REPLICATION_LAG_MS \(500\)/],
      [{ MAX_REPLICATION_LAG_MS: '500', MAX_REPLICATION_LAG_HARD_MS: 'x' }, /MAX_REPLICATION_LAG_HARD_MS must be an integer from 1 to 86400000, got "x"/],
      [{ MAX_REPLICATION_LAG_HARD_MS: '2000' }, /MAX_REPLICATION_LAG_HARD_MS needs MAX_REPLICATION_LAG_MS/],
    ];
    for (const [env, message] of cases) expect(() => loadConfig(env), JSON.stringify(env)).toThrow(message);
  });

  it('accepts only plain decimal integers', () => {
    for (const port of ['0x1F90', '8e3', ' 8080 ', '8080.0', '-1', '']) {
      if (port === '') expect(loadConfig({ PORT: port }).port).toBe(8080);
      else expect(() => loadConfig({ PORT: port }), port).toThrow(/PORT must be an integer/);
    }
  });

  it('requires NODE_NAME for a replicated node', () => {
    expect(() => loadConfig({ REPLICATION_TRANSPORT: 'plexus' })).toThrow(/NODE_NAME is required/);
    expect(() => loadConfig({ REPLICATION_TRANSPORT: 'nats', NATS_URL: 'nats://127.0.0.1:4222' })).toThrow(/NODE_NAME is required/);
  });

  describe('nats', () => {
    it('reads the servers, publish mode, stream limits and placement', () => {
      const c = loadConfig({
        REPLICATION_TRANSPORT: 'nats',
        NODE_NAME: 'n1',
        NATS_URL: 'nats://u:p@127.0.0.1:4222, nats://127.0.0.1:4223',
        NATS_PUBLISH_MODE: 'batched',
        NATS_STREAM_MAX_AGE_MS: '60000',
        NATS_STREAM_MAX_BYTES: '1073741824',
        NATS_STREAM_REPLICAS: '3',
        NATS_PLACEMENT: 'replica:n1',
      });
      expect(c.transport).toEqual({
        kind: 'nats',
        servers: ['nats://u:p@127.0.0.1:4222', 'nats://127.0.0.1:4223'],
        mode: 'batched',
        streamMaxAgeMs: 60000,
        streamMaxBytes: 1073741824,
        streamReplicas: 3,
        placement: { cluster: 'replica', tag: 'n1' },
      });
      expect(loadConfig({ REPLICATION_TRANSPORT: 'nats', NODE_NAME: 'n1', NATS_URL: 'nats://h:1' }).transport).toMatchObject({ mode: 'per-write', streamMaxBytes: -1, streamReplicas: 1, placement: undefined });
    });

    it('reports every nats problem at once', () => {
      let problems: readonly string[] = [];
      try {
        loadConfig({ REPLICATION_TRANSPORT: 'nats', NODE_NAME: 'n1', NATS_URL: 'http://x', NATS_PUBLISH_MODE: 'sometimes', NATS_STREAM_REPLICAS: '9', NATS_PLACEMENT: 'x' });
      } catch (e) {
        problems = (e as ConfigError).problems;
      }
      expect(problems).toEqual([
        'NATS_URL: "http://x" is not a nats:// or tls:// URL',
        'NATS_PLACEMENT must be cluster:tag, got "x"',
        'NATS_PUBLISH_MODE must be one of per-write, batched, got "sometimes"',
        'NATS_STREAM_REPLICAS must be an integer from 1 to 5, got "9"',
      ]);
    });

    describe('TLS files', () => {
      const { dir, pem } = pemFiles('replica-config-nats-');
      const files = { NATS_TLS_CA: pem('ca.crt'), NATS_TLS_CERT: pem('n1.crt'), NATS_TLS_KEY: pem('n1.key') };
      const nats = { REPLICATION_TRANSPORT: 'nats', NODE_NAME: 'n1', NATS_URL: 'tls://127.0.0.1:4222' };

      it('reads the CA, the client certificate and its key; none means no TLS settings', () => {
        expect(loadConfig({ ...nats, ...files }).transport).toMatchObject({ tls: { ca: files.NATS_TLS_CA, cert: files.NATS_TLS_CERT, key: files.NATS_TLS_KEY } });
        expect(loadConfig({ ...nats, NATS_TLS_CA: files.NATS_TLS_CA }).transport).toMatchObject({ tls: { ca: files.NATS_TLS_CA } });
        expect(loadConfig({ ...nats, NATS_TLS_CERT: files.NATS_TLS_CERT, NATS_TLS_KEY: files.NATS_TLS_KEY }).transport).toMatchObject({ tls: { cert: files.NATS_TLS_CERT, key: files.NATS_TLS_KEY } });
        const none = loadConfig({ ...nats, NATS_TLS_CA: '' }).transport;
        expect(none).toHaveProperty('tls', undefined);
        expect(Object.isFrozen((loadConfig({ ...nats, ...files }).transport as { tls: object }).tls)).toBe(true);
      });

      it('reports unreadable files, and a certificate without its key, together', () => {
        const problems = (env: Record<string, string>) => problemsOf({ ...nats, ...env });
        expect(problems({ NATS_TLS_CA: '/nonexistent/ca.crt', NATS_TLS_CERT: files.NATS_TLS_CERT })).toEqual([
          'NATS_TLS_CA: cannot read /nonexistent/ca.crt',
          "NATS_TLS_CERT and NATS_TLS_KEY go together (the node's client certificate and its key), but only NATS_TLS_CERT is set",
        ]);
        expect(problems({ NATS_TLS_KEY: files.NATS_TLS_KEY, NATS_TLS_CERT: join(dir, 'missing.crt') })).toEqual([`NATS_TLS_CERT: cannot read ${join(dir, 'missing.crt')}`]);
        expect(problems({ NATS_TLS_KEY: files.NATS_TLS_KEY })).toEqual([
          "NATS_TLS_CERT and NATS_TLS_KEY go together (the node's client certificate and its key), but only NATS_TLS_KEY is set",
        ]);
      });

      it('reads them only for REPLICATION_TRANSPORT=nats', () => {
        expect(loadConfig({ NATS_TLS_CERT: '/nonexistent/n1.crt' }).transport).toEqual({ kind: 'none' });
      });
    });
  });

  describe('plexus', () => {
    const { pem } = pemFiles('replica-config-');
    const files = { TLS_CA: pem('ca.crt'), TLS_CERT: pem('n1.crt'), TLS_KEY: pem('n1.key') };

    it('reads the listen address, peers (dropping its own entry) and TLS files', () => {
      const c = loadConfig({
        REPLICATION_TRANSPORT: 'plexus',
        NODE_NAME: 'n1',
        REPLICATION_HOST: '127.0.0.2',
        REPLICATION_PORT: '9901',
        PEERS: 'n1@127.0.0.2:9901, n2@127.0.0.3:9902,n3@[::1]:9903',
        ...files,
      });
      expect(c.transport).toEqual({
        kind: 'plexus',
        listen: { host: '127.0.0.2', port: 9901 },
        peers: [
          { name: 'n2', host: '127.0.0.3', port: 9902 },
          { name: 'n3', host: '::1', port: 9903 },
        ],
        advertise: '127.0.0.2:9901',
        tls: { ca: files.TLS_CA, cert: files.TLS_CERT, key: files.TLS_KEY },
        caKey: undefined,
      });
    });

    it('advertises REPLICATION_ADVERTISE, and requires it where the listen address cannot be reached', () => {
      const base = { REPLICATION_TRANSPORT: 'plexus', NODE_NAME: 'n1', PEERS: 'n2@127.0.0.3:9902', ...files };
      const c = loadConfig({ ...base, REPLICATION_HOST: '0.0.0.0', REPLICATION_ADVERTISE: 'n1.example:9800' });
      expect(c.transport.kind === 'plexus' && c.transport.advertise).toBe('n1.example:9800');
      const problems = (env: Record<string, string>) => problemsOf({ ...base, ...env });
      expect(problems({ REPLICATION_HOST: '0.0.0.0' })).toEqual([expect.stringMatching(/^REPLICATION_ADVERTISE is required when REPLICATION_HOST is 0\.0\.0\.0/)]);
      expect(problems({ REPLICATION_PORT: '0' })).toEqual([expect.stringMatching(/^REPLICATION_ADVERTISE is required when REPLICATION_PORT is 0/)]);
      expect(problems({ REPLICATION_ADVERTISE: 'no port' })).toEqual(['REPLICATION_ADVERTISE must be host:port, got "no port"']);
    });

    it('takes ADMIN_TOKEN of at least 16 characters, different from API_TOKEN', () => {
      const base = { REPLICATION_TRANSPORT: 'none' };
      expect(loadConfig({ ...base, ADMIN_TOKEN: 'a'.repeat(16) }).adminToken).toBe('a'.repeat(16));
      expect(loadConfig(base).adminToken).toBeUndefined();
      expect(() => loadConfig({ ...base, ADMIN_TOKEN: 'short' })).toThrow(/ADMIN_TOKEN must be at least 16 characters/);
      expect(() => loadConfig({ ...base, ADMIN_TOKEN: 'b'.repeat(16), API_TOKEN: 'b'.repeat(16) })).toThrow(/ADMIN_TOKEN must differ from API_TOKEN/);
    });

    it('reports missing peers and unreadable or missing TLS files together', () => {
      let problems: readonly string[] = [];
      try {
        loadConfig({ REPLICATION_TRANSPORT: 'plexus', NODE_NAME: 'n1', PEERS: 'n2@host, n2@h:1, n2@h:2', TLS_CA: '/nonexistent/ca.crt' });
      } catch (e) {
        problems = (e as ConfigError).problems;
      }
      expect(problems).toEqual([
        'PEERS: "n2@host" is not name@host:port',
        'PEERS: n2 is listed twice',
        'TLS_CA: cannot read /nonexistent/ca.crt',
        'TLS_CERT is required for REPLICATION_TRANSPORT=plexus (a PEM file path)',
        'TLS_KEY is required for REPLICATION_TRANSPORT=plexus (a PEM file path)',
      ]);
    });
  });
});

/** The problems loadConfig reports for `env`, or [] when it accepts it. */
function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (e) {
    return (e as ConfigError).problems;
  }
  return [];
}

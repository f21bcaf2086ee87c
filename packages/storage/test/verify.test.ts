import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { openDbs, tableKey } from '../src/schema.js';
import { tempStores } from './helpers.js';

const t = tempStores();
afterEach(() => t.cleanup());

describe('verify', () => {
  it('reports a log gap, a stale index entry and table stats that disagree with the records', async () => {
    const path = t.dir();
    const s = t.open('n1', {}, path);
    for (let i = 0; i < 4; i++) await s.put('t', { id: `k${i}` });
    expect(s.verify()).toEqual([]);
    await s.close();

    const env = open({ path });
    const dbs = openDbs(env);
    await dbs.log.remove(2);
    await dbs.index.put(['n1', 3], 99);
    await dbs.meta.put(tableKey('t'), { count: 7, digest: new Uint8Array(16) });
    await env.close();

    const problems = t.open('n1', {}, path).verify();
    expect(problems).toContainEqual(expect.stringMatching(/^table t: stats \{"count":7,.* but records give \{"count":4,/));
    expect(problems).toContain('log: gap before seq 3 (expected 2)');
    expect(problems).toContain('log: origin n1 jumps from 1 to 3 at seq 3');
    expect(problems).toContain('index: n1/3 does not point at seq 3');
    expect(problems).toHaveLength(4);
  });
});

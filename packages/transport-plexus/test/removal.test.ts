import { afterEach, describe, expect, it } from 'vitest';
import type { Member } from '@replica/transport-api';
import { eventually } from '@replica/transport-api/testing';
import { plexusCluster, type PlexusCluster } from './helpers.js';

const count = (c: PlexusCluster, i: number) => c.nodes[i]?.store.tables()['t']?.count ?? 0;

describe('plexus: a removed member far behind', () => {
  let c: PlexusCluster;
  afterEach(() => c?.teardown());

  it('still delivers every write it acknowledged: the drain lasts while its batches keep coming, not a fixed time', async () => {
    // n2 ships one entry per frame, one frame in flight: its backlog of 600 writes takes
    // far longer than the 300 ms drain, during which its batches arrive without a pause.
    c = await plexusCluster(3, (i) => ({ removalDrainMs: 300, ...(i === 2 ? { batchMaxEntries: 1, maxInFlightFrames: 1 } : {}) }));
    const members = (removed: boolean): Member[] => c.peers.map((p) => ({ name: p.name, address: `${p.host}:${p.port}`, state: p.name === 'n2' && removed ? 'removed' : 'active', revoked: [] }));
    for (const n of c.nodes) n.transport.setMembers?.(members(false));
    await eventually(() => c.nodes.every((n) => n.transport.status().peers.filter((p) => p.connected).length === 2), 10_000, () => 'mesh');
    const writes = 600;

    await Promise.all(Array.from({ length: writes }, (_, k) => c.nodes[2]?.store.put('t', { id: `w${k}` })));
    expect(count(c, 0), 'n0 was behind when n2 was removed').toBeLessThan(writes);
    for (const n of c.nodes) n.transport.setMembers?.(members(true));
    await eventually(() => count(c, 0) === writes && count(c, 1) === writes, 20_000, () => `n0 ${count(c, 0)}, n1 ${count(c, 1)} of ${writes}`);
    // …and then the connections to n2 close, for good.
    await eventually(() => c.nodes.slice(0, 2).every((n) => n.transport.status().peers.every((p) => p.name !== 'n2')) && c.nodes[2]?.transport.status().peers.every((p) => !p.connected) === true, 10_000, () => JSON.stringify(c.nodes.map((n) => n.transport.status().peers.map((p) => `${p.name}:${p.connected}`))));
  });
});

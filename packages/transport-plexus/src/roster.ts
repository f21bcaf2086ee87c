import { parseHostPort, type Member } from '@replica/transport-api';
import type { PlexusPeer } from './options.js';

/** Who this node replicates with, and whom it refuses, given its seeds and the member list. */
export interface Roster {
  /** The peers to keep a connection with, by name. */
  readonly peers: ReadonlyMap<string, PlexusPeer>;
  /** Removed members: refused by name. */
  readonly removed: ReadonlySet<string>;
  /** Revoked certificate fingerprints: refused whatever name they carry. */
  readonly revoked: ReadonlySet<string>;
  /** This node itself was removed: it replicates with nobody. */
  readonly selfRemoved: boolean;
}

/**
 * The peers of node `self`: its seeds (PEERS) and every active member, less removed
 * members. A seed is reached at the address its seed entry gives (an operator's local
 * override, e.g. a proxy), any other member at its recorded address; a member whose
 * recorded address does not parse is left out (and reported in `unreachable`). Pure.
 */
export function rosterOf(self: string, seeds: readonly PlexusPeer[], members: readonly Member[], unreachable: (m: Member) => void = () => {}): Roster {
  const removed = new Set<string>();
  const revoked = new Set<string>();
  const active = new Map<string, Member>();
  for (const m of members) {
    for (const f of m.revoked) revoked.add(f);
    if (m.state === 'removed') removed.add(m.name);
    else active.set(m.name, m);
  }
  const peers = new Map<string, PlexusPeer>();
  const selfRemoved = removed.has(self);
  if (!selfRemoved) {
    for (const seed of seeds) if (seed.name !== self && !removed.has(seed.name)) peers.set(seed.name, seed);
    for (const m of active.values()) {
      if (m.name === self || peers.has(m.name)) continue;
      const at = parseHostPort(m.address);
      if (at) peers.set(m.name, { name: m.name, ...at });
      else unreachable(m);
    }
  }
  return { peers, removed, revoked, selfRemoved };
}

import type { Store } from '@replica/storage';
import { MEMBERS_TABLE, isNodeName, parseHostPort, type Logger, type Member, type RecordValue, type ReplicationTransport } from '@replica/transport-api';
import type { TransportConfig } from './config.js';
import { InvalidMemberError, MemberExistsError, MemberNotFoundError, MemberRemovalRefusedError, MembershipUnavailableError } from './errors.js';

/** A member as the replicated list stores it: one record per node in {@link MEMBERS_TABLE}, keyed by its name. */
export interface MemberRecord extends Member {
  /** When the member was last added or removed (ISO 8601). */
  readonly changedAt: string;
  /** The node that made that change. */
  readonly changedBy: string;
}

/** What a member change asks for, as the admin API and the CLI take it. */
export interface MemberChange {
  readonly name: string;
  readonly address?: string;
}

/**
 * The cluster's member list: replicated state in the system table {@link MEMBERS_TABLE},
 * written through the store like any record (so it travels on either transport, merges
 * last-write-wins per member, and survives restarts) and kept away from the table routes.
 *
 * A node records itself when its list holds no record of it (a new cluster, or a node
 * joining with a fresh data directory); it never records itself again once removed.
 * Every change of the list, local or replicated, is handed to the transport
 * ({@link ReplicationTransport.setMembers}): PEERS are only the seeds.
 */
export class Membership {
  #digest: string | undefined;
  #checkQueued = false;
  #unsubscribe: (() => void) | undefined;
  #selfRemoved = false;

  constructor(
    private readonly store: Store,
    private readonly transport: ReplicationTransport | undefined,
    /** This node's name and the replication address peers reach it at ('' for nats). */
    private readonly self: { readonly name: string; readonly address: string },
    private readonly log: Logger,
  ) {}

  /** This node's name. */
  get name(): string {
    return this.self.name;
  }

  /** This node's own record says it was removed. */
  get selfRemoved(): boolean {
    return this.#selfRemoved;
  }

  /** Records this node if the list has no record of it, hands the list to the transport and follows its changes. Call before the transport starts. */
  async start(): Promise<void> {
    if (!this.transport) return;
    const { name, address } = this.self;
    if (this.store.versionOf(MEMBERS_TABLE, name) === undefined) {
      await this.#write({ name, address, state: 'active', revoked: [] });
      this.log.info({ member: name, address }, 'membership: this node recorded itself as a member');
    }
    this.#check();
    this.#unsubscribe = this.store.onCommit(() => this.#checkSoon());
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Every member the list holds, removed ones included, by name. */
  list(): MemberRecord[] {
    const out: MemberRecord[] = [];
    for (const value of this.store.scan(MEMBERS_TABLE)) {
      const m = toMember(value);
      if (m) out.push(m);
      else this.log.warn({ id: value.id }, 'membership: ignoring a malformed member record');
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The change as {@link add} would make it, or the error it would refuse it with; changes nothing. */
  checkAdd(change: MemberChange): { name: string; address: string; current: MemberRecord | undefined } {
    if (!this.transport) throw new MembershipUnavailableError();
    const checked = this.#validate(change);
    const current = this.#get(checked.name);
    if (current?.state === 'active') throw new MemberExistsError(checked.name);
    return { ...checked, current };
  }

  /** Adds `change.name` (again, if it was removed: its revoked certificates stay refused). */
  async add(change: MemberChange): Promise<MemberRecord> {
    const { name, address, current } = this.checkAdd(change);
    const record = await this.#write({ name, address, state: 'active', revoked: current?.revoked ?? [] });
    this.log.warn({ member: name, address }, 'membership: member added');
    return record;
  }

  /**
   * Removes `name`: every member closes its connections to it and refuses it from then
   * on, by name and by the fingerprints of the certificates it was seen with.
   */
  async remove(name: string): Promise<MemberRecord> {
    if (!this.transport) throw new MembershipUnavailableError();
    if (!isNodeName(name)) throw new InvalidMemberError(`${JSON.stringify(name)} is not a node name`);
    const current = this.#get(name);
    if (current?.state !== 'active') throw new MemberNotFoundError(name);
    if (name === this.self.name) throw new MemberRemovalRefusedError(name, 'a node cannot remove itself: remove it from another member');
    const others = this.list().filter((m) => m.state === 'active' && m.name !== name);
    if (others.length === 0) throw new MemberRemovalRefusedError(name, 'it is the last member');
    const seen = this.transport.status().peers.find((p) => p.name === name)?.info?.['fingerprint'];
    const revoked = [...new Set([...current.revoked, ...(seen ? [seen] : [])])];
    const record = await this.#write({ name, address: current.address, state: 'removed', revoked });
    this.log.warn({ member: name, revoked }, 'membership: member removed');
    return record;
  }

  #validate(change: MemberChange): { name: string; address: string } {
    const { name, address } = change;
    if (!isNodeName(name)) throw new InvalidMemberError(`name: ${JSON.stringify(name)} is not a node name (a letter or digit, then up to 63 letters, digits, _ or -)`);
    const needsAddress = this.self.address !== '';
    if (address === undefined || address === '') {
      if (needsAddress) throw new InvalidMemberError('address: the replication address (host:port) of the new node is required');
      return { name, address: '' };
    }
    if (!parseHostPort(address)) throw new InvalidMemberError(`address: ${JSON.stringify(address)} is not host:port`);
    return { name, address };
  }

  #get(name: string): MemberRecord | undefined {
    const value = this.store.get(MEMBERS_TABLE, name);
    return value === undefined ? undefined : toMember(value);
  }

  async #write(m: Member): Promise<MemberRecord> {
    const record: MemberRecord = { ...m, revoked: [...m.revoked], changedAt: new Date().toISOString(), changedBy: this.self.name };
    await this.store.put(MEMBERS_TABLE, { id: m.name, ...record });
    this.#check();
    return record;
  }

  #checkSoon(): void {
    if (this.#checkQueued) return;
    this.#checkQueued = true;
    setImmediate(() => {
      this.#checkQueued = false;
      if (!this.store.closed) this.#check();
    });
  }

  /** Hands the list to the transport if it changed since the last look. */
  #check(): void {
    const digest = this.store.tableStats(MEMBERS_TABLE)?.digest;
    if (digest === this.#digest) return;
    this.#digest = digest;
    const members = this.list();
    const wasRemoved = this.#selfRemoved;
    this.#selfRemoved = members.some((m) => m.name === this.self.name && m.state === 'removed');
    if (this.#selfRemoved && !wasRemoved) this.log.error({ node: this.self.name }, 'membership: this node was removed from the cluster; it no longer replicates');
    this.transport?.setMembers?.(members);
  }
}

/** A stored value as a {@link MemberRecord}, or undefined when it is not one. */
function toMember(v: RecordValue): MemberRecord | undefined {
  const { name, address, state, revoked, changedAt, changedBy } = v as Record<string, unknown>;
  if (!isNodeName(name) || name !== v.id || typeof address !== 'string' || (state !== 'active' && state !== 'removed')) return undefined;
  if (!Array.isArray(revoked) || !revoked.every((f) => typeof f === 'string') || typeof changedAt !== 'string' || typeof changedBy !== 'string') return undefined;
  return { name, address, state, revoked: revoked as string[], changedAt, changedBy };
}

/** The address this node records for itself: plexus's advertised replication address; '' for nats (peers find its stream) and none. */
export function selfAddress(transport: TransportConfig): string {
  return transport.kind === 'plexus' ? transport.advertise : '';
}

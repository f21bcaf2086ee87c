import { TransportStateError, decodeBatch } from '@replica/transport-api';
import type { StreamAdmin } from './admin.js';
import type { NatsContext } from './context.js';
import { RESTORE_RETRY_MS } from './options.js';
import type { ResyncCarrier } from './resync.js';
import { firstEntryAfter } from './stream-search.js';

/** Runs a start-up step again while JetStream is not available yet (see whileStarting). */
export type StartStep = <T>(what: string, step: () => Promise<T>) => Promise<T>;

/**
 * Gives a node that lost its data its own earlier writes back before it writes again:
 * peers skip entries at or below their cursor for it, so a write under an origin
 * sequence it used before would never reach them. `streamHead` is the highest own
 * originSeq its stream holds. Resolves once the node continues after every write it
 * made before (or when it has no peer to ask); rejects with a
 * {@link TransportStateError} when it cannot, rather than diverge.
 */
export async function recoverOwnWrites(ctx: NatsContext, admin: StreamAdmin, resync: ResyncCarrier, streamHead: number, starting: StartStep): Promise<void> {
  await restoreFromPeers(ctx, admin, resync, streamHead, starting);
  await replayOwnStream(ctx, admin, streamHead);
}

/**
 * When the node's stream shows that it wrote before but cannot give all of it back
 * (its limits expired every message, or the oldest ones), a snapshot from a peer first
 * returns its records and its write count; the stream supplies the rest. With no peer
 * able to, this fails; a node with no peers (no other stream) starts as it is.
 */
async function restoreFromPeers(ctx: NatsContext, admin: StreamAdmin, resync: ResyncCarrier, streamHead: number, starting: StartStep): Promise<void> {
  const { node, names, cfg, lifecycle, log } = ctx;
  const own = () => node.cursors()[node.name] ?? 0;
  const state = await starting('reading the stream', () => admin.state(names.ownStream));
  let needed: number; // the own cursor that the stream can continue from
  if (state.messages === 0) {
    if (state.lastSeq === 0 || own() > 0) return; // a new stream, or a node that kept its data
    needed = 1;
  } else {
    if (streamHead <= own()) return;
    const first = await firstEntryAfter(admin.reader(names.ownStream), 0);
    if (!first || first.originSeq <= own() + 1) return; // replayOwnStream applies the rest
    needed = first.originSeq - 1;
  }
  const peers = (await admin.peerStreams()).map((p) => p.origin);
  log.error(
    { own: own(), streamMessages: state.messages, streamLastSeq: state.lastSeq, peers },
    'nats: this node lost writes that its stream no longer holds; restoring them from a peer before it writes again',
  );
  if (peers.length === 0) {
    log.warn({}, 'nats: no peer to restore from; starting with what this node holds');
    return;
  }
  const deadline = Date.now() + cfg.startTimeoutMs;
  for (;;) {
    for (const peer of peers) {
      try {
        await resync.request(peer);
      } catch (err) {
        log.warn({ peer, err: (err as Error).message }, 'nats: restoring from this peer failed; trying the next');
        continue;
      }
      if (own() >= needed) {
        log.warn({ peer, own: own() }, 'nats: restored this node\'s writes from a peer');
        return;
      }
    }
    if (Date.now() >= deadline || !lifecycle.started) break;
    await new Promise((r) => setTimeout(r, RESTORE_RETRY_MS));
  }
  throw new TransportStateError(
    lifecycle.kind,
    'new',
    `this node lost writes that its stream no longer holds, and no peer (${peers.join(', ')}) could send them back within ${cfg.startTimeoutMs} ms; start it again once a peer runs`,
  );
}

/** Applies the node's own writes that its stream holds and its store lacks, so new writes continue after them. */
async function replayOwnStream(ctx: NatsContext, admin: StreamAdmin, streamHead: number): Promise<void> {
  const { node, names, log } = ctx;
  const own = node.cursors()[node.name] ?? 0;
  if (streamHead <= own) return;
  log.warn({ own, inStream: streamHead }, 'nats: the stream holds writes of this node that its store lacks; recovering them');
  const state = await admin.state(names.ownStream);
  for (let seq = state.firstSeq; seq <= state.lastSeq; seq++) {
    let data: Uint8Array | undefined;
    try {
      data = await admin.message(names.ownStream, seq);
    } catch (err) {
      log.warn({ seq, err: (err as Error).message }, 'nats: cannot read a message of the own stream; skipping it');
      continue;
    }
    if (data === undefined) continue; // deleted message
    const r = await node.applyRemote(decodeBatch(data));
    if (r.deferred > 0) {
      log.error({ seq }, 'nats: own stream has a gap; recovery incomplete');
      break;
    }
  }
}

import { MalformedFrameError } from './errors.js';
import type { Cursors, LocalNode, SnapshotRecord } from './types.js';

/**
 * Where a merge-resync snapshot goes: one transport's carrier (frames on a socket,
 * requests through a broker, a direct call). The order is begin, records…, end. Each
 * call resolves when the carrier can take the next one, so a slow receiver paces the
 * sender and a snapshot is never held in memory whole.
 */
export interface SnapshotSink {
  begin(cursors: Cursors): void | Promise<void>;
  records(batch: readonly SnapshotRecord[]): void | Promise<void>;
  end(cursors: Cursors): void | Promise<void>;
}

export interface SnapshotSent {
  /** Records handed to the sink. */
  readonly records: number;
  /** false when `open()` turned false before the end was sent. */
  readonly complete: boolean;
}

/**
 * Streams a consistent snapshot of `node` (see {@link LocalNode.snapshot}) into `sink`,
 * `batchSize` records at a time. Stops early, without sending the end, once `open()`
 * turns false (the connection or the transport went away).
 */
export async function sendSnapshot(node: LocalNode, batchSize: number, sink: SnapshotSink, open: () => boolean = () => true): Promise<SnapshotSent> {
  const snap = node.snapshot(batchSize);
  await sink.begin(snap.cursors);
  let records = 0;
  for (const batch of snap.batches) {
    if (!open()) return { records, complete: false };
    records += batch.length;
    await sink.records(batch);
  }
  if (!open()) return { records, complete: false };
  await sink.end(snap.cursors);
  return { records, complete: true };
}

/**
 * The receiving side of a merge resync: merges records as they arrive (last write wins,
 * never replacing newer data) and raises this node's cursors to the snapshot's only
 * once every record was merged. A resync cut short raises no cursor, so the next one
 * starts over and nothing is skipped. Records or an end without a beginning are a
 * {@link MalformedFrameError}.
 */
export class SnapshotMerge implements SnapshotSink {
  #cursors: Cursors | undefined;
  #records = 0;
  #changed = 0;

  constructor(private readonly node: LocalNode) {}

  /** Records received, and how many of them changed this node, in the current resync. */
  get received(): { readonly records: number; readonly changed: number } {
    return { records: this.#records, changed: this.#changed };
  }

  /** A resync began and has not ended (or been abandoned) yet. */
  get inProgress(): boolean {
    return this.#cursors !== undefined;
  }

  /**
   * Abandons the resync in progress (a batch of it could not be merged): its cursors
   * are never adopted, so nothing it did not merge counts as applied. Merged records
   * stay; a new resync merges them again harmlessly.
   */
  abandon(): void {
    this.#cursors = undefined;
  }

  begin(cursors: Cursors): void {
    this.#cursors = cursors;
    this.#records = 0;
    this.#changed = 0;
  }

  async records(batch: readonly SnapshotRecord[]): Promise<void> {
    if (this.#cursors === undefined) throw new MalformedFrameError('snapshot records without a beginning');
    this.#records += batch.length;
    this.#changed += await this.node.mergeSnapshot(batch);
  }

  /**
   * Adopts the cursors announced at the beginning. An end that repeats them (as plexus
   * frames do) must repeat them exactly: other cursors are a {@link MalformedFrameError}.
   */
  async end(cursors?: Cursors): Promise<void> {
    const begun = this.#cursors;
    if (begun === undefined) throw new MalformedFrameError('snapshot end without a beginning');
    if (cursors !== undefined && !sameCursors(begun, cursors)) throw new MalformedFrameError('snapshot end announces other cursors than its beginning');
    this.#cursors = undefined;
    await this.node.adoptCursors(begun);
  }
}

function sameCursors(a: Cursors, b: Cursors): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

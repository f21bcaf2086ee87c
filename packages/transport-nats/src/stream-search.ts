import type { LogEntry } from '@replica/transport-api';
import { STREAM_SEARCH_ATTEMPTS } from './options.js';

/** What a stream holds now. */
export interface StreamState {
  readonly messages: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** Reads one origin's stream. Its limits may discard messages from the front at any time. */
export interface StreamReader {
  state(): Promise<StreamState>;
  /** The entries of message `seq`, or undefined when the stream does not hold it (any more). */
  entries(seq: number): Promise<readonly LogEntry[] | undefined>;
}

/**
 * The stream sequence of the first message whose entries reach `originSeq` (the
 * stream's next sequence when none does). A stream holds its origin's entries in
 * order, so this is a binary search; a message discarded during the search counts as
 * one before the answer, since the stream discards from the front.
 */
export async function streamSeqOf(stream: StreamReader, originSeq: number): Promise<number> {
  const state = await stream.state();
  if (state.messages === 0) return state.lastSeq + 1;
  let lo = state.firstSeq;
  let hi = state.lastSeq + 1; // answer in [lo, hi]
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const entries = await stream.entries(mid);
    const last = entries === undefined ? undefined : (entries.at(-1)?.originSeq ?? 0);
    if (last === undefined || last < originSeq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The first entry of the stream's first message that holds an entry after `cursor`, or
 * undefined when no message does (yet), or when the stream kept discarding the one
 * found before it could be read.
 */
export async function firstEntryAfter(stream: StreamReader, cursor: number): Promise<LogEntry | undefined> {
  for (let attempt = 1; attempt <= STREAM_SEARCH_ATTEMPTS; attempt++) {
    const entries = await stream.entries(await streamSeqOf(stream, cursor + 1));
    if (entries !== undefined) return entries[0];
  }
  return undefined;
}

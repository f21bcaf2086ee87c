/**
 * Whether `reason` is lmdb-js's rejection of a failed commit ("Commit failed", with the
 * engine's error in its `commitError` promise). lmdb-js rejects one promise per failed
 * batch that no caller holds; the store holds it, and reports the failure through the
 * promises of the writes themselves. A process-wide `unhandledRejection` handler can use
 * this to tell such a rejection from a bug.
 */
export function isLmdbCommitFailure(reason: unknown): boolean {
  return reason instanceof Error && (reason as { commitError?: unknown }).commitError instanceof Promise;
}

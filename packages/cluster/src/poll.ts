// Waiting for a process to reach a state that only its HTTP API shows.

export type PollResult = 'done' | 'stopped' | 'timeout';

/**
 * Calls `check` every `intervalMs` until it resolves true (`done`), `stop` settles
 * (`stopped`, noticed within one interval), or `deadline` (epoch ms) has passed after a
 * false check (`timeout`). `check` runs at least once; a check that throws counts as
 * false. Never rejects.
 */
export async function pollUntil(check: () => Promise<boolean>, o: { readonly deadline: number; readonly intervalMs: number; readonly stop?: Promise<unknown> }): Promise<PollResult> {
  let stopped = false;
  const stop = o.stop?.then(
    () => void (stopped = true),
    () => void (stopped = true),
  );
  for (;;) {
    if (stopped) return 'stopped';
    if (await check().catch(() => false)) return 'done';
    if (Date.now() > o.deadline) return 'timeout';
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((r) => (timer = setTimeout(r, o.intervalMs))), ...(stop ? [stop] : [])]);
    clearTimeout(timer);
  }
}

/**
 * Whether `GET url` answers 200 within `timeoutMs` — and, with `node`, a JSON body whose
 * `node` is that name (so another process that took the port does not count as the
 * node). False on any other status or body, a refused connection or a timeout.
 */
export async function answersOk(url: string, timeoutMs: number, node?: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    if (res.status !== 200) return false;
    return node === undefined || (JSON.parse(body) as { node?: unknown }).node === node;
  } catch {
    return false;
  }
}

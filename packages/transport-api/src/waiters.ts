/**
 * Pending waits for replica confirmations. A transport calls `notify()` whenever a
 * peer confirmed something (or the transport stopped); each wait re-counts and ends
 * when it has enough confirmations, or at its timeout.
 */
export class ConfirmationWaiters {
  readonly #checks = new Set<() => void>();

  /**
   * Resolves with `confirmed()` once it reaches `count`, `open()` turns false, or
   * `timeoutMs` passed (then possibly below `count`).
   */
  wait(confirmed: () => number, count: number, timeoutMs: number, open: () => boolean): Promise<number> {
    if (confirmed() >= count || !open()) return Promise.resolve(confirmed());
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#checks.delete(check);
        resolve(confirmed());
      };
      const check = () => {
        if (confirmed() >= count || !open()) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.#checks.add(check);
    });
  }

  notify(): void {
    for (const check of [...this.#checks]) check();
  }
}

/**
 * Wakes one waiting loop (a sender waiting for new log entries, a publisher for
 * commits). A wake that comes while the loop is busy is kept, so the next wait()
 * returns at once: no commit is ever missed between a loop's last read and its wait.
 * Made for one waiter at a time.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | undefined;

  wake(): void {
    this.#pending = true;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    resolve?.();
  }

  /** Resolves at the next wake() (at once if one came since the last wait), or after `timeoutMs`. */
  wait(timeoutMs?: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const woken = () => {
        clearTimeout(timer);
        this.#pending = false;
        resolve();
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          // a wake after the timeout is kept for the next wait, not spent on this one
          if (this.#resolve === woken) this.#resolve = undefined;
          resolve();
        }, timeoutMs);
      }
      this.#resolve = woken;
    });
  }
}

/**
 * Something to wait on until whatever it guards may have changed: every
 * waiter wakes on `notify()`, or when its own pause runs out. Waiters look
 * at the state again themselves, so a notify that comes early is harmless.
 */
export class Wakeup {
  private waiters = new Set<() => void>();

  notify() {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  /** Resolves on the next notify, after `ms` (if given) or when `signal` aborts. */
  wait(ms?: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = ms === undefined ? null : setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
      this.waiters.add(done);
    });
  }
}

/**
 * Counts permits so at most `limit` holders run at once; waiters are served
 * first come, first served. Used to cap concurrent DNS lookups.
 */
export class Semaphore {
  readonly #limit: number;
  #active = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(limit: number) {
    if (!(limit >= 1)) throw new RangeError(`semaphore limit must be >= 1, got ${limit}`);
    this.#limit = limit;
  }

  /** Holders right now (for tests and metrics). */
  get active(): number {
    return this.#active;
  }

  /** Resolves with a release function once a permit is free. */
  async acquire(): Promise<() => void> {
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    } else {
      this.#active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      // Hand the permit straight to the next waiter so the count never dips
      // and lets a newcomer jump the queue.
      if (next) next();
      else this.#active--;
    };
  }

  /** Runs `fn` while holding a permit. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

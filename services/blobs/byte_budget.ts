/**
 * A count of bytes in flight with a ceiling: `take` waits while the ceiling
 * would be passed, `give` returns bytes. One request larger than the whole
 * ceiling still goes through when nothing else is held, so it cannot wait
 * forever.
 */
export class ByteBudget {
  #used = 0;
  #waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  get used(): number {
    return this.#used;
  }

  async take(n: number): Promise<void> {
    while (this.#used > 0 && this.#used + n > this.limit) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    this.#used += n;
  }

  give(n: number): void {
    this.#used -= n;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

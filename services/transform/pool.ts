import { TransformError } from "./errors.ts";

/**
 * Runs at most `concurrency` tasks at once; up to `queueLimit` more wait in
 * arrival order, and beyond that `run` refuses at once (a `busy`
 * TransformError) rather than letting waits grow without bound. A finishing
 * task hands its slot straight to the first waiter.
 */
export class TransformPool {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly concurrency: number, readonly queueLimit: number) {}

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running < this.concurrency) {
      this.#running++;
    } else if (this.#waiting.length < this.queueLimit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      throw new TransformError(
        "busy",
        `Every transform slot is taken and ${this.queueLimit} requests are waiting; retry shortly.`,
        undefined,
        1,
      );
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

/** A latch that a loop sleeps on until something wakes it, a time passes, or it is aborted. */
export class Wakeup {
  #woken = false;
  #resolve: (() => void) | null = null;

  wake(): void {
    this.#woken = true;
    this.#resolve?.();
  }

  /** Resolves "woken" (also for a wake since the last wait), "timeout" or "aborted". */
  wait(ms: number, signal: AbortSignal): Promise<"woken" | "timeout" | "aborted"> {
    if (signal.aborted) return Promise.resolve("aborted");
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve("woken");
    }
    return new Promise((resolve) => {
      const done = (why: "woken" | "timeout" | "aborted") => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#resolve = null;
        this.#woken = false;
        resolve(why);
      };
      const onAbort = () => done("aborted");
      const timer = setTimeout(() => done("timeout"), Math.max(0, ms));
      signal.addEventListener("abort", onAbort);
      this.#resolve = () => done("woken");
    });
  }
}

/** Sleeps `ms`, or less when aborted. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * Identical work asked for while it is under way is done once: later callers
 * get the first caller's promise (its result or its error). The entry goes
 * when the work settles, so a later call starts afresh.
 */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, Promise<T>>();

  /** Runs `work` unless `key` is in flight; `joined` says which happened. */
  do(key: string, work: () => Promise<T>): { result: Promise<T>; joined: boolean } {
    const current = this.#inFlight.get(key);
    if (current) return { result: current, joined: true };
    const result = work().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, result);
    return { result, joined: false };
  }

  get size(): number {
    return this.#inFlight.size;
  }
}

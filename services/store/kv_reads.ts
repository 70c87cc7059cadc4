/** Keys per `getMany`: Deno KV's limit. */
const MAX_KEYS = 10;

interface Waiting {
  keys: Deno.KvKey[];
  resolve(entries: Deno.KvEntryMaybe<unknown>[]): void;
  reject(err: unknown): void;
}

/**
 * Coalesces small reads into `getMany` calls of up to ten keys. Each read
 * is one trip to KV's database thread; when a job starts, a hundred items
 * look up their URLs at once, and reads queued one by one delayed the
 * claims of the first items behind those of the hundredth (measured in the
 * throttled benchmark's start-up). A read waits for company at most until
 * the current macrotask ends; a full group goes out at once.
 * Every read sees one consistent snapshot of its own keys, as with a plain
 * `getMany`; reads grouped together share one snapshot.
 */
export class KvReadBatcher {
  #queue: Waiting[] = [];
  #queuedKeys = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly kv: Deno.Kv) {}

  /** Like `kv.getMany(keys)`; `keys.length` must be at most ten. */
  getMany<T extends readonly unknown[]>(
    keys: readonly Deno.KvKey[],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }> {
    if (keys.length > MAX_KEYS) throw new RangeError(`at most ${MAX_KEYS} keys per read`);
    return new Promise((resolve, reject) => {
      if (this.#queuedKeys + keys.length > MAX_KEYS) this.#flush();
      this.#queue.push({ keys: [...keys], resolve: resolve as Waiting["resolve"], reject });
      this.#queuedKeys += keys.length;
      if (this.#queuedKeys === MAX_KEYS) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), 0);
    });
  }

  #flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const group = this.#queue;
    this.#queue = [];
    this.#queuedKeys = 0;
    if (group.length === 0) return;
    this.kv.getMany(group.flatMap((w) => w.keys)).then((entries) => {
      let at = 0;
      for (const w of group) {
        w.resolve(entries.slice(at, at + w.keys.length));
        at += w.keys.length;
      }
    }, (err) => {
      for (const w of group) w.reject(err);
    });
  }
}

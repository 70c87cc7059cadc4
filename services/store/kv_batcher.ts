/**
 * The subset of `Deno.AtomicOperation` the repos build commits with, so the
 * same code can write into a real atomic operation or into a batch.
 */
export interface AtomicWriter {
  check(...checks: Deno.AtomicCheck[]): this;
  set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }): this;
  delete(key: Deno.KvKey): this;
  sum(key: Deno.KvKey, n: bigint): this;
}

/** KV's limits per commit (platform notes), with headroom. */
const MAX_CHECKS = 100;
const MAX_MUTATIONS = 1000;
const MAX_BYTES = 700_000;

/**
 * Most batches committed at once. A second batch starts only while more is
 * queued than one batch can take: every KV transaction has a fixed cost on
 * KV's database thread, so under load fewer, larger batches are cheaper
 * (one at a time gave batches of 16 per-item commits instead of 4, and cut
 * that thread's CPU per image by a quarter in a KV-only measurement), while
 * a queue longer than a batch never waits for a reply to drain. Batches in
 * flight together are independent commits, as without batching: a caller
 * that depends on its own earlier commit has awaited it.
 */
const MAX_IN_FLIGHT = 4;

type Op =
  | { kind: "check"; check: Deno.AtomicCheck }
  | { kind: "set"; key: Deno.KvKey; value: unknown; options?: { expireIn?: number } }
  | { kind: "delete"; key: Deno.KvKey }
  | { kind: "sum"; key: Deno.KvKey; n: bigint };

/** One caller's commit, recorded so it can be replayed into a shared one. */
class Recorded implements AtomicWriter {
  readonly ops: Op[] = [];
  checks = 0;
  mutations = 0;
  bytes = 0;
  /** Keys checked, set or deleted (sums commute, so they never conflict). */
  readonly keys = new Set<string>();

  check(...checks: Deno.AtomicCheck[]): this {
    for (const check of checks) {
      this.ops.push({ kind: "check", check });
      this.checks++;
      this.#touch(check.key);
    }
    return this;
  }

  set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }): this {
    this.ops.push({ kind: "set", key, value, options });
    this.mutations++;
    this.bytes += estimateSize(value);
    this.#touch(key);
    return this;
  }

  delete(key: Deno.KvKey): this {
    this.ops.push({ kind: "delete", key });
    this.mutations++;
    this.#touch(key);
    return this;
  }

  sum(key: Deno.KvKey, n: bigint): this {
    this.ops.push({ kind: "sum", key, n });
    this.mutations++;
    return this;
  }

  #touch(key: Deno.KvKey) {
    this.keys.add(keyId(key));
    this.bytes += 64;
  }

  replay(op: Deno.AtomicOperation): void {
    for (const o of this.ops) {
      if (o.kind === "check") op.check(o.check);
      else if (o.kind === "set") op.set(o.key, o.value, o.options);
      else if (o.kind === "delete") op.delete(o.key);
      else op.sum(o.key, o.n);
    }
  }
}

interface Pending {
  tx: Recorded;
  resolve(result: Deno.KvCommitResult | Deno.KvCommitError): void;
  reject(err: unknown): void;
}

/**
 * Group commit for Deno KV. Each commit costs a write and a flush of the KV
 * store (and, remotely, a round trip), so commits that arrive while others
 * are in flight are merged into the next one, as long as they touch
 * different keys and fit KV's limits. No waiting is added when idle.
 *
 * A merged commit succeeds or fails as a whole; when it fails (some caller's
 * check no longer holds), each caller's part is committed on its own so
 * that only the callers whose checks failed see `ok: false`.
 */
export class KvBatcher {
  readonly #queue: Pending[] = [];
  /** Checks and mutations queued, to tell when the queue holds more than one batch. */
  #queuedChecks = 0;
  #queuedMutations = 0;
  #flushing = 0;

  constructor(private readonly kv: Deno.Kv) {}

  /** Commits what `build` writes, possibly together with other callers' commits. */
  commit(build: (w: AtomicWriter) => void): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    const tx = new Recorded();
    build(tx);
    return new Promise((resolve, reject) => {
      this.#queue.push({ tx, resolve, reject });
      this.#queuedChecks += tx.checks;
      this.#queuedMutations += tx.mutations;
      const overflowing = this.#queuedChecks > MAX_CHECKS ||
        this.#queuedMutations > MAX_MUTATIONS;
      if (this.#flushing === 0 || (overflowing && this.#flushing < MAX_IN_FLIGHT)) this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing++;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#takeBatch();
        await this.#commitBatch(batch);
      }
    } finally {
      this.#flushing--;
    }
  }

  /** The longest run of queued commits that touch disjoint keys and fit one commit. */
  #takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    let checks = 0, mutations = 0, bytes = 0;
    for (let i = 0; i < this.#queue.length;) {
      const p = this.#queue[i];
      const { tx } = p;
      const fits = checks + tx.checks <= MAX_CHECKS && mutations + tx.mutations <= MAX_MUTATIONS &&
        bytes + tx.bytes <= MAX_BYTES;
      const disjoint = [...tx.keys].every((k) => !keys.has(k));
      if (batch.length > 0 && !(fits && disjoint)) {
        if (!fits) break;
        i++; // conflicts with this batch: leave it for the next one, keep order otherwise
        continue;
      }
      batch.push(p);
      this.#queue.splice(i, 1);
      this.#queuedChecks -= tx.checks;
      this.#queuedMutations -= tx.mutations;
      for (const k of tx.keys) keys.add(k);
      checks += tx.checks;
      mutations += tx.mutations;
      bytes += tx.bytes;
    }
    return batch;
  }

  async #commitBatch(batch: Pending[]): Promise<void> {
    try {
      if (batch.length === 1) {
        batch[0].resolve(await this.#commitOne(batch[0].tx));
        return;
      }
      const op = this.kv.atomic();
      for (const p of batch) p.tx.replay(op);
      const res = await op.commit();
      if (res.ok) {
        for (const p of batch) p.resolve(res);
        return;
      }
      // Someone's check failed: find out whose by committing each part alone.
      const results = await Promise.all(batch.map((p) => this.#commitOne(p.tx)));
      batch.forEach((p, i) => p.resolve(results[i]));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  #commitOne(tx: Recorded): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    const op = this.kv.atomic();
    tx.replay(op);
    return op.commit();
  }
}

/** A string naming a key, cheap to build (this runs for every key of every commit). */
function keyId(key: Deno.KvKey): string {
  let id = "";
  for (const part of key) {
    id += typeof part === "string" ? `s${part}\u0000` : `${typeof part}${String(part)}\u0000`;
  }
  return id;
}

/**
 * A generous estimate of a value's encoded size, for the per-commit byte
 * limit: records here are small objects whose only long field is a URL.
 */
function estimateSize(value: unknown): number {
  if (value === null || value === undefined) return 8;
  if (typeof value === "string") return value.length * 3;
  if (typeof value !== "object" || value instanceof Deno.KvU64) return 16;
  let size = 256;
  for (const v of Object.values(value)) if (typeof v === "string") size += v.length * 3;
  return size;
}

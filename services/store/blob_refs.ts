import type { AtomicWriter } from "./kv_batcher.ts";
import { KvReadBatcher } from "./kv_reads.ts";
import { type BlobKeys, blobKeys } from "./kv_keys.ts";
import type { CollectionMark } from "./records.ts";

/**
 * The bytes a caller made durable were collected before its reference to
 * them could be committed (a delete of the last other reference raced
 * with it). Transient: storing the bytes again succeeds.
 */
export class BlobGone extends Error {}

/** What a commit adding a reference to `sha256` must check (see {@link BlobRefs.prepareAdd}). */
export interface RefToken {
  sha256: string;
  mark: Deno.KvEntryMaybe<CollectionMark>;
}

/** A stored reference count, as read, for a commit that drops one reference. */
export type CountEntry = Deno.KvEntryMaybe<Deno.KvU64>;

/** A collected blob's mark is kept this long: far beyond any lease a writer could hold. */
const COLLECTED_MEMORY_MS = 24 * 60 * 60 * 1000;
/** How often a writer looks again while a collection of its bytes is under way. */
const WAIT_STEP_MS = 25;

/**
 * Reference counts of blobs, kept in KV and changed in the same atomic
 * commits as the entries that refer to the bytes (URL index entries and
 * derivative entries). Free of HTTP and of the blob store itself.
 *
 * The protocol that keeps bytes and references consistent without locks:
 * - adding a reference (after the bytes are durable) sums +1 into the count
 *   and checks the blob's collection mark as read;
 * - dropping the last reference deletes the count and sets the mark to
 *   `pending` in the same commit, and queues the blob for collection;
 * - the collector moves the mark to `collecting` guarded by the count and
 *   the mark, deletes the bytes, then sets `collected`.
 * The mark only moves forward through a collection, so a writer whose read
 * of it is older than the collector's commit fails its check and looks
 * again; one that reads `collecting` waits; one that reads `collected`
 * proceeds only if its bytes are on disk (written after the deletion).
 */
export class BlobRefs {
  /** Every download reads a mark before indexing: those reads share KV round trips. */
  readonly #reads: KvReadBatcher;

  constructor(private readonly kv: Deno.Kv, readonly keys: BlobKeys = blobKeys()) {
    this.#reads = new KvReadBatcher(kv);
  }

  /** How many stored entries refer to the bytes (0 when none). */
  async count(sha256: string): Promise<number> {
    return Number((await this.countEntry(sha256)).value?.value ?? 0n);
  }

  countEntry(sha256: string): Promise<CountEntry> {
    return this.kv.get<Deno.KvU64>(this.keys.refs(sha256));
  }

  /**
   * Call after making `sha256` durable and before committing a reference to
   * it. Waits while a collection of the same bytes is under way; throws
   * {@link BlobGone} when they were collected after being written (`present`
   * says whether they are there now) or a collection died midway (the sweep
   * finishes it).
   */
  async prepareAdd(sha256: string, present: () => Promise<boolean>): Promise<RefToken> {
    for (;;) {
      const [mark] = await this.#reads.getMany<[CollectionMark]>([this.keys.mark(sha256)]);
      const m = mark.value;
      if (!m || m.state === "pending") return { sha256, mark };
      if (m.state === "collecting") {
        if (m.until < Date.now()) {
          throw new BlobGone(`a collection of ${sha256} is unfinished; store the bytes again`);
        }
        await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
        continue;
      }
      if (await present()) return { sha256, mark };
      throw new BlobGone(`the bytes ${sha256} were collected before they could be indexed`);
    }
  }

  /**
   * The token of bytes assumed never to have been unreferenced: its commit
   * checks that they have no collection mark, without reading it first.
   * True of nearly every blob; when it is not, the commit fails and the
   * caller takes the `prepareAdd` path. Saves a KV read per download.
   */
  assumeUnmarked(sha256: string): RefToken {
    return { sha256, mark: { key: this.keys.mark(sha256), value: null, versionstamp: null } };
  }

  /** Adds to `w` one more reference to the bytes of `token`. */
  addRef(w: AtomicWriter, token: RefToken): void {
    // A sum commutes with other sums: concurrent references never conflict.
    w.check(token.mark).sum(this.keys.refs(token.sha256), 1n);
  }

  /**
   * Adds to `w` one reference fewer, guarded by `count` as read. True when
   * it was the last one: the bytes are then queued for collection (call
   * the collector once the commit succeeds).
   */
  addUnref(w: AtomicWriter, sha256: string, count: CountEntry): boolean {
    const n = count.value?.value ?? 0n;
    w.check(count);
    if (n > 1n) {
      w.set(this.keys.refs(sha256), new Deno.KvU64(n - 1n));
      return false;
    }
    w.delete(this.keys.refs(sha256));
    this.#addPending(w, sha256);
    return true;
  }

  /**
   * Queues bytes that were made durable but never referenced (a derivative
   * nobody recorded) for collection, unless something refers to them now.
   */
  async requestCollection(sha256: string): Promise<void> {
    for (;;) {
      const [count, mark] = await this.kv.getMany<[Deno.KvU64, CollectionMark]>([
        this.keys.refs(sha256),
        this.keys.mark(sha256),
      ]);
      if ((count.value?.value ?? 0n) > 0n || mark.value?.state === "collecting") return;
      const op = this.kv.atomic().check(count, mark);
      this.#addPending(op, sha256);
      if ((await op.commit()).ok) return;
    }
  }

  #addPending(w: AtomicWriter, sha256: string): void {
    w.set(this.keys.mark(sha256), { state: "pending", since: Date.now() } satisfies CollectionMark)
      .set(this.keys.toCollect(sha256), null);
  }

  /** The mark that ends a collection, remembered for a day. */
  collectedMark(): { value: CollectionMark; expireIn: number } {
    return { value: { state: "collected", at: Date.now() }, expireIn: COLLECTED_MEMORY_MS };
  }
}

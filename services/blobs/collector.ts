import type { BlobRefs } from "../store/blob_refs.ts";
import type { CollectionMark, DerivativeRecord } from "../store/records.ts";
import type { BlobStore } from "./blob_store.ts";

/** A collection that takes longer than this is presumed dead and may be taken over. */
const COLLECTION_LEASE_MS = 30_000;

/**
 * Deletes the bytes nothing refers to any more, with their derivatives
 * (whose own bytes go too once nothing else refers to them). Driven by the
 * KV queue of unreferenced blobs: called right after the commit that freed
 * them, and by the sweep for whatever a crash left behind, so its cost is
 * that of the work queued, never of everything stored.
 */
export class BlobCollector {
  readonly #owner = crypto.randomUUID();

  constructor(
    private readonly kv: Deno.Kv,
    private readonly refs: BlobRefs,
    private readonly blobs: Pick<BlobStore, "delete">,
    /** Told of every blob deleted (to drop it from in-memory caches). */
    private readonly onDeleted?: (sha256: string) => void,
  ) {}

  /** Collects `sha256` (and what it alone kept) if nothing refers to it; returns the blobs deleted. */
  async collect(sha256: string): Promise<string[]> {
    const deleted: string[] = [];
    const work = [sha256];
    while (work.length > 0) {
      const sha = work.pop()!;
      const freed = await this.#collectOne(sha);
      if (freed === null) continue;
      deleted.push(sha);
      work.push(...freed);
    }
    return deleted;
  }

  /** Collects every blob queued for collection; returns how many were deleted. */
  async sweep(): Promise<number> {
    let deleted = 0;
    const queued = this.kv.list<null>({ prefix: this.refs.keys.allToCollect() });
    for await (const entry of queued) {
      deleted += (await this.collect(entry.key.at(-1) as string)).length;
    }
    return deleted;
  }

  /** Null when the blob was not deleted; else the derivatives it freed. */
  async #collectOne(sha: string): Promise<string[] | null> {
    const k = this.refs.keys;
    for (;;) {
      const [count, mark] = await this.kv.getMany<[Deno.KvU64, CollectionMark]>([
        k.refs(sha),
        k.mark(sha),
      ]);
      const m = mark.value;
      if ((count.value?.value ?? 0n) > 0n) {
        // Referenced again since it was queued: the mark is stale.
        const op = this.kv.atomic().check(count, mark).delete(k.toCollect(sha));
        if (m?.state === "pending") op.delete(k.mark(sha));
        if ((await op.commit()).ok) return null;
        continue;
      }
      if (m?.state === "collecting" && m.until >= Date.now()) return null; // someone else's
      if (m?.state === "collected") {
        await this.kv.delete(k.toCollect(sha));
        return null;
      }
      const collecting: CollectionMark = {
        state: "collecting",
        until: Date.now() + COLLECTION_LEASE_MS,
        owner: this.#owner,
      };
      const taken = await this.kv.atomic().check(count, mark).set(k.mark(sha), collecting)
        .commit();
      if (!taken.ok) continue;
      const freed = await this.#dropDerivatives(sha);
      await this.blobs.delete(sha);
      this.onDeleted?.(sha);
      const done = this.refs.collectedMark();
      await this.kv.atomic()
        .check({ key: k.mark(sha), versionstamp: taken.versionstamp })
        .set(k.mark(sha), done.value, { expireIn: done.expireIn })
        .delete(k.toCollect(sha))
        .commit();
      return freed;
    }
  }

  /** Removes the derivative entries of a blob being collected; returns the derivatives freed. */
  async #dropDerivatives(sha: string): Promise<string[]> {
    const freed: string[] = [];
    for await (
      const first of this.kv.list<DerivativeRecord>({
        prefix: this.refs.keys.derivativesOf(sha),
      })
    ) {
      let entry: Deno.KvEntryMaybe<DerivativeRecord> = first;
      while (entry.value) {
        const target = entry.value.sha256;
        const count = await this.refs.countEntry(target);
        const op = this.kv.atomic().check(entry).delete(entry.key);
        const last = this.refs.addUnref(op, target, count);
        if ((await op.commit()).ok) {
          if (last) freed.push(target);
          break;
        }
        entry = await this.kv.get<DerivativeRecord>(entry.key);
      }
    }
    return freed;
  }
}

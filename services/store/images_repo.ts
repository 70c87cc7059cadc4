import type { BlobStore } from "../blobs/blob_store.ts";
import type { FailureReason } from "../fetch/reasons.ts";
import type { BlobRefs, CountEntry, RefToken } from "./blob_refs.ts";
import { ulid, urlHash } from "./ids.ts";
import type { AtomicWriter } from "./kv_batcher.ts";
import { KvReadBatcher } from "./kv_reads.ts";
import { listPage } from "./page.ts";
import type { Keys } from "./kv_keys.ts";
import type { ImageRecord, UrlFailure, UrlLease, VariantSpec } from "./records.ts";
import { hasVariants, mergeVariants } from "../images/variant_specs.ts";

/** Most records `getRecent` keeps. */
const RECENT_MAX = 10_000;

/** Failures are remembered this long so jobs waiting on the same download share its outcome. */
const FAILURE_MEMORY_MS = 60 * 60 * 1000;

export interface ImagePage {
  items: ImageRecord[];
  /** Sequence number to resume after, or null on the last page. */
  last: string | null;
}

/**
 * How an index write changes reference counts: a reference to the new
 * bytes, one fewer to the bytes the entry held before. Empty when the
 * bytes stay the same. Made by {@link ImagesRepo.planRefs} for the entry
 * as read.
 */
export interface RefPlan {
  add?: RefToken;
  drop?: { sha256: string; count: CountEntry };
}

export interface ImagesRepoOptions {
  refs: BlobRefs;
  /** To tell whether bytes are on disk when a collection of them raced with their writing. */
  blobs: Pick<BlobStore, "stat">;
  /** How long `getRecentByUrl` may answer from memory (0, the default, turns it off). */
  recentMs?: number;
  /**
   * Told of bytes a `put` left unreferenced (a refresh changed them), after
   * the commit, to collect them. Callers of `addPut` and `remove` get them back instead.
   */
  onFreed?: (sha256: string) => void;
}

/**
 * The URL-keyed image index, plus the per-URL download lease. Free of HTTP.
 * Every write of an entry keeps the blob reference counts (BlobRefs) in the
 * same commit.
 */
export class ImagesRepo {
  /** Recently read records, for the read-heavy serving path only. */
  readonly #recent = new Map<string, { record: ImageRecord; at: number }>();
  /** Lookups of many items starting at once share KV reads. */
  readonly #reads: KvReadBatcher;

  readonly #refs: BlobRefs;
  readonly #blobs: Pick<BlobStore, "stat">;
  readonly #onFreed?: (sha256: string) => void;
  private readonly recentMs: number;

  constructor(
    private readonly kv: Deno.Kv,
    private readonly keys: Keys,
    opts: ImagesRepoOptions,
  ) {
    this.#reads = new KvReadBatcher(kv);
    this.#refs = opts.refs;
    this.#blobs = opts.blobs;
    this.#onFreed = opts.onFreed;
    this.recentMs = opts.recentMs ?? 0;
  }

  async get(urlHash: string): Promise<ImageRecord | null> {
    return (await this.kv.get<ImageRecord>(this.keys.image(urlHash))).value;
  }

  /**
   * The record of a URL, possibly as read in the last `recentMs` (keyed by
   * the URL itself, which also saves hashing it on the serving path). Writes
   * in this process clear it at once; a refresh written by another instance
   * shows after at most `recentMs`. Misses are never remembered, so a newly
   * stored image is visible at once.
   */
  async getRecentByUrl(url: string): Promise<ImageRecord | null> {
    const now = Date.now();
    const hit = this.#recent.get(url);
    if (hit && now - hit.at < this.recentMs) return hit.record;
    const record = await this.get(urlHash(url));
    if (this.recentMs > 0) {
      this.#recent.delete(url);
      if (record) this.#recent.set(url, { record, at: now });
      // Bounded: drop the oldest insertions first.
      for (const key of this.#recent.keys()) {
        if (this.#recent.size <= RECENT_MAX) break;
        this.#recent.delete(key);
      }
    }
    return record;
  }

  /** The records of many URLs (by hash), null where none is stored. */
  async getMany(hashes: string[]): Promise<(ImageRecord | null)[]> {
    const batches: Promise<Deno.KvEntryMaybe<ImageRecord>[]>[] = [];
    for (let i = 0; i < hashes.length; i += 10) {
      const keys = hashes.slice(i, i + 10).map((h) => this.keys.image(h));
      batches.push(this.kv.getMany<ImageRecord[]>(keys));
    }
    return (await Promise.all(batches)).flat().map((e) => e.value);
  }

  /** Positions (in `hashes`) of the URLs that are already stored. */
  async whichExist(hashes: string[]): Promise<Set<number>> {
    const found = new Set<number>();
    (await this.getMany(hashes)).forEach((record, i) => {
      if (record !== null) found.add(i);
    });
    return found;
  }

  /**
   * Reads what an index write over `existing` needs to keep the reference
   * counts right when it stores `sha256` (durable already). Throws BlobGone
   * when those bytes were collected after they were written. `optimistic`
   * skips reading the bytes' collection mark (see BlobRefs.assumeUnmarked):
   * for a first try whose failure is followed by `put`.
   */
  async planRefs(
    existing: ImageRecord | null,
    sha256: string,
    opts: { optimistic?: boolean } = {},
  ): Promise<RefPlan> {
    if (existing?.sha256 === sha256) return {};
    const [add, count] = await Promise.all([
      opts.optimistic
        ? this.#refs.assumeUnmarked(sha256)
        : this.#refs.prepareAdd(sha256, async () => (await this.#blobs.stat(sha256)) !== null),
      existing
        ? this.#reads.getMany<[Deno.KvU64]>([this.#refs.keys.refs(existing.sha256)])
          .then(([c]) => c)
        : null,
    ]);
    return existing && count ? { add, drop: { sha256: existing.sha256, count } } : { add };
  }

  /**
   * Adds to `op` the index entry for a URL whose bytes are already durable,
   * guarded by `existing` (the entry as read) and with `plan` (made for
   * it), and gives up the URL's download lease and any remembered failure.
   * A refreshed URL keeps its place in listings. Once the commit succeeds,
   * call `forgetRecent(url)` and collect `freed` (bytes no longer referenced).
   */
  addPut(
    op: AtomicWriter,
    record: Omit<ImageRecord, "seq">,
    urlHash: string,
    existing: Deno.KvEntryMaybe<ImageRecord>,
    plan: RefPlan = {},
  ): { record: ImageRecord; freed: string | null } {
    const before = existing.value?.sha256;
    if (before !== record.sha256 && (!plan.add || (before !== undefined && !plan.drop))) {
      // A write without its plan would leave the counts wrong for good.
      throw new Error(`index write of ${record.url} without its reference plan`);
    }
    const full: ImageRecord = { ...record, seq: existing.value?.seq ?? ulid() };
    op.check(existing)
      .set(this.keys.image(urlHash), full)
      .set(this.keys.imageBySeq(full.seq), full)
      .delete(this.keys.urlLease(urlHash))
      .delete(this.keys.urlFailure(urlHash));
    if (plan.add) this.#refs.addRef(op, plan.add);
    const freed = plan.drop && this.#refs.addUnref(op, plan.drop.sha256, plan.drop.count)
      ? plan.drop.sha256
      : null;
    return { record: full, freed };
  }

  /**
   * Writes (or refreshes) the index entry for a URL whose bytes are durable,
   * retrying on concurrent writes. Throws BlobGone (transient) when the
   * bytes were collected before they could be indexed.
   */
  async put(record: Omit<ImageRecord, "seq">, urlHash: string): Promise<ImageRecord> {
    for (;;) {
      const existing = await this.kv.get<ImageRecord>(this.keys.image(urlHash));
      const plan = await this.planRefs(existing.value, record.sha256);
      const op = this.kv.atomic();
      const { record: full, freed } = this.addPut(op, record, urlHash, existing, plan);
      if ((await op.commit()).ok) {
        this.forgetRecent(record.url);
        if (freed) this.#onFreed?.(freed);
        return full;
      }
    }
  }

  /**
   * Makes a stored image keep the variant specs `wanted` (see
   * mergeVariants), retrying on concurrent writes. The entry as it is
   * afterwards (empty when the URL is no longer stored).
   */
  async keepVariants(
    urlHash: string,
    wanted: VariantSpec[],
  ): Promise<Deno.KvEntryMaybe<ImageRecord>> {
    for (;;) {
      const existing = await this.kv.get<ImageRecord>(this.keys.image(urlHash));
      if (!existing.value || hasVariants(existing.value.variants, wanted)) return existing;
      const record = {
        ...existing.value,
        variants: mergeVariants(existing.value.variants, wanted),
      };
      // Same bytes, so no reference changes; a download of the URL in
      // progress keeps its lease.
      const op = this.kv.atomic().check(existing)
        .set(existing.key, record)
        .set(this.keys.imageBySeq(record.seq), record);
      const res = await op.commit();
      if (res.ok) {
        this.forgetRecent(record.url);
        return { key: existing.key, value: record, versionstamp: res.versionstamp };
      }
    }
  }

  /** Hands bytes a batched `addPut` left unreferenced to the collector. */
  freed(sha256: string | null): void {
    if (sha256) this.#onFreed?.(sha256);
  }

  /**
   * Rewrites the index entry with `update` only while it still holds the
   * bytes `sha256` (a 304 vouches for those; newer bytes stored meanwhile by
   * another job must stay), and gives up the URL's lease either way.
   * Retries on concurrent writes.
   */
  async confirm(
    urlHash: string,
    sha256: string,
    update: (current: ImageRecord) => Omit<ImageRecord, "seq">,
  ): Promise<void> {
    for (;;) {
      const existing = await this.kv.get<ImageRecord>(this.keys.image(urlHash));
      const op = this.kv.atomic();
      if (existing.value?.sha256 === sha256) {
        this.addPut(op, update(existing.value), urlHash, existing);
      } else {
        op.check(existing).delete(this.keys.urlLease(urlHash));
      }
      if ((await op.commit()).ok) {
        if (existing.value) this.forgetRecent(existing.value.url);
        return;
      }
    }
  }

  /** Drops a URL's record from the serving path's memory after this process changed it. */
  forgetRecent(url: string): void {
    this.#recent.delete(url);
  }

  /**
   * Removes a URL's index entry and its reference to the bytes, retrying on
   * concurrent writes. Null when nothing was stored under it; else the
   * entry removed and the bytes it left unreferenced (collect them).
   */
  async remove(
    urlHash: string,
  ): Promise<{ removed: ImageRecord; freed: string | null } | null> {
    for (;;) {
      const existing = await this.kv.get<ImageRecord>(this.keys.image(urlHash));
      if (!existing.value) return null;
      const { sha256, seq, url } = existing.value;
      const count = await this.#refs.countEntry(sha256);
      const op = this.kv.atomic()
        .check(existing)
        .delete(existing.key)
        .delete(this.keys.imageBySeq(seq));
      const last = this.#refs.addUnref(op, sha256, count);
      if ((await op.commit()).ok) {
        this.#recent.delete(url);
        return { removed: existing.value, freed: last ? sha256 : null };
      }
    }
  }

  /**
   * Oldest first. Pages resume after the last listed sequence number, so
   * images added meanwhile land on later pages and none repeats or is skipped.
   */
  async list(limit: number, afterSeq?: string): Promise<ImagePage> {
    const page = await listPage<ImageRecord>(this.kv, this.keys.imagesBySeq(), limit, afterSeq);
    return { items: page.entries.map((e) => e.value), last: page.last as string | null };
  }

  /** Every index entry with the hash of its URL, for fsck. */
  async *all(): AsyncIterable<{ urlHash: string; record: ImageRecord }> {
    for await (const e of this.kv.list<ImageRecord>({ prefix: this.keys.images() })) {
      yield { urlHash: e.key.at(-1) as string, record: e.value };
    }
  }

  /** What is known of a URL before downloading it: its index entry, last failure and lease. */
  async lookup(urlHash: string): Promise<UrlState> {
    const [image, failure, lease] = await this.#reads.getMany<
      [ImageRecord, UrlFailure, UrlLease]
    >([
      this.keys.image(urlHash),
      this.keys.urlFailure(urlHash),
      this.keys.urlLease(urlHash),
    ]);
    return { image, failure, lease };
  }

  /** Adds to `op` the taking of a URL's download lease, as read in `state`. */
  addLease(
    op: AtomicWriter,
    urlHash: string,
    lease: Deno.KvEntryMaybe<UrlLease>,
    holder: string,
    leaseMs: number,
  ): void {
    op.check(lease).set(
      this.keys.urlLease(urlHash),
      { owner: holder, until: Date.now() + leaseMs } satisfies UrlLease,
      { expireIn: leaseMs * 4 },
    );
  }

  /** Extends a lease this holder has (while its download runs). */
  async renewLease(urlHash: string, holder: string, leaseMs: number): Promise<boolean> {
    const entry = await this.kv.get<UrlLease>(this.keys.urlLease(urlHash));
    if (entry.value?.owner !== holder) return false;
    const op = this.kv.atomic();
    this.addLease(op, urlHash, entry, holder, leaseMs);
    return (await op.commit()).ok;
  }

  /** Adds to `op` the end of a download's lease (whoever holds it now). */
  addReleaseLease(op: AtomicWriter, urlHash: string): void {
    op.delete(this.keys.urlLease(urlHash));
  }

  /** Adds to `op` a failed download, remembered so jobs waiting on it fail the same way. */
  addFailure(
    op: AtomicWriter,
    urlHash: string,
    failure: { reason: FailureReason; detail: string; attempts: number },
  ): void {
    op.set(
      this.keys.urlFailure(urlHash),
      { ...failure, at: Date.now() } satisfies UrlFailure,
      { expireIn: FAILURE_MEMORY_MS },
    ).delete(this.keys.urlLease(urlHash));
  }
}

/** A URL's entries as read before a download, for guarded commits. */
export interface UrlState {
  image: Deno.KvEntryMaybe<ImageRecord>;
  failure: Deno.KvEntryMaybe<UrlFailure>;
  lease: Deno.KvEntryMaybe<UrlLease>;
}

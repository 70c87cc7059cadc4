import type { FailureReason } from "../fetch/reasons.ts";
import { ulid, urlHash } from "./ids.ts";
import type { AtomicWriter } from "./kv_batcher.ts";
import { KvReadBatcher } from "./kv_reads.ts";
import { listPage } from "./page.ts";
import type { Keys } from "./kv_keys.ts";
import type { ImageRecord, UrlFailure, UrlLease } from "./records.ts";

/** Most records `getRecent` keeps. */
const RECENT_MAX = 10_000;

/** Failures are remembered this long so jobs waiting on the same download share its outcome. */
const FAILURE_MEMORY_MS = 60 * 60 * 1000;

export interface ImagePage {
  items: ImageRecord[];
  /** Sequence number to resume after, or null on the last page. */
  last: string | null;
}

/** The URL-keyed image index, plus the per-URL download lease. Free of HTTP. */
export class ImagesRepo {
  /** Recently read records, for the read-heavy serving path only. */
  readonly #recent = new Map<string, { record: ImageRecord; at: number }>();
  /** Lookups of many items starting at once share KV reads. */
  readonly #reads: KvReadBatcher;

  constructor(
    private readonly kv: Deno.Kv,
    private readonly keys: Keys,
    /** How long `getRecent` may answer from memory (0 turns it off). */
    private readonly recentMs = 0,
  ) {
    this.#reads = new KvReadBatcher(kv);
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
   * Adds to `op` the index entry for a URL whose bytes are already durable,
   * guarded by `existing` (the entry as read), and gives up the URL's
   * download lease and any remembered failure. A refreshed URL keeps its
   * place in listings. Call `forgetRecent(url)` once the commit succeeds.
   */
  addPut(
    op: AtomicWriter,
    record: Omit<ImageRecord, "seq">,
    urlHash: string,
    existing: Deno.KvEntryMaybe<ImageRecord>,
  ): ImageRecord {
    const full: ImageRecord = { ...record, seq: existing.value?.seq ?? ulid() };
    op.check(existing)
      .set(this.keys.image(urlHash), full)
      .set(this.keys.imageBySeq(full.seq), full)
      .delete(this.keys.urlLease(urlHash))
      .delete(this.keys.urlFailure(urlHash));
    return full;
  }

  /** Writes (or refreshes) the index entry for a URL, retrying on concurrent writes. */
  async put(record: Omit<ImageRecord, "seq">, urlHash: string): Promise<ImageRecord> {
    for (;;) {
      const existing = await this.kv.get<ImageRecord>(this.keys.image(urlHash));
      const op = this.kv.atomic();
      const full = this.addPut(op, record, urlHash, existing);
      if ((await op.commit()).ok) {
        this.forgetRecent(record.url);
        return full;
      }
    }
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

  /** Removes an index entry (used by fsck --repair when its blob is gone). */
  async remove(urlHash: string): Promise<void> {
    const existing = await this.kv.get<ImageRecord>(this.keys.image(urlHash));
    if (!existing.value) return;
    this.#recent.delete(existing.value.url);
    await this.kv.atomic()
      .check(existing)
      .delete(existing.key)
      .delete(this.keys.imageBySeq(existing.value.seq))
      .commit();
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

import type { FailureReason } from "../fetch/reasons.ts";
import { ulid } from "./ids.ts";
import { listPage } from "./page.ts";
import type { Keys } from "./kv_keys.ts";
import type { ImageRecord, UrlFailure, UrlLease } from "./records.ts";

/** Failures are remembered this long so jobs waiting on the same download share its outcome. */
const FAILURE_MEMORY_MS = 60 * 60 * 1000;

export interface ImagePage {
  items: ImageRecord[];
  /** Sequence number to resume after, or null on the last page. */
  last: string | null;
}

/** The URL-keyed image index, plus the per-URL download lease. Free of HTTP. */
export class ImagesRepo {
  constructor(private readonly kv: Deno.Kv, private readonly keys: Keys) {}

  async get(urlHash: string): Promise<ImageRecord | null> {
    return (await this.kv.get<ImageRecord>(this.keys.image(urlHash))).value;
  }

  /** Positions (in `hashes`) of the URLs that are already stored. */
  async whichExist(hashes: string[]): Promise<Set<number>> {
    const batches: Promise<Deno.KvEntryMaybe<unknown>[]>[] = [];
    for (let i = 0; i < hashes.length; i += 10) {
      batches.push(this.kv.getMany(hashes.slice(i, i + 10).map((h) => this.keys.image(h))));
    }
    const found = new Set<number>();
    (await Promise.all(batches)).flat().forEach((e, i) => {
      if (e.versionstamp !== null) found.add(i);
    });
    return found;
  }

  /**
   * Writes (or refreshes) the index entry for a URL whose bytes are already
   * durable, and gives up the URL's download lease in the same commit. A
   * refreshed URL keeps its place in listings.
   */
  async put(record: Omit<ImageRecord, "seq">, urlHash: string): Promise<ImageRecord> {
    for (;;) {
      const existing = await this.kv.get<ImageRecord>(this.keys.image(urlHash));
      const full: ImageRecord = { ...record, seq: existing.value?.seq ?? ulid() };
      const res = await this.kv.atomic()
        .check(existing)
        .set(this.keys.image(urlHash), full)
        .set(this.keys.imageBySeq(full.seq), full)
        .delete(this.keys.urlLease(urlHash))
        .delete(this.keys.urlFailure(urlHash))
        .commit();
      if (res.ok) return full;
    }
  }

  /** Removes an index entry (used by fsck --repair when its blob is gone). */
  async remove(urlHash: string): Promise<void> {
    const existing = await this.kv.get<ImageRecord>(this.keys.image(urlHash));
    if (!existing.value) return;
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

  /**
   * Takes the right to download a URL. Returns false while another live
   * worker holds it, so two jobs naming one URL download it once.
   */
  async acquireLease(urlHash: string, owner: string, leaseMs: number): Promise<boolean> {
    const key = this.keys.urlLease(urlHash);
    const entry = await this.kv.get<UrlLease>(key);
    const now = Date.now();
    if (entry.value && entry.value.owner !== owner && entry.value.until >= now) return false;
    const res = await this.kv.atomic()
      .check(entry)
      .set(key, { owner, until: now + leaseMs } satisfies UrlLease, { expireIn: leaseMs * 4 })
      .commit();
    return res.ok;
  }

  async releaseLease(urlHash: string, owner: string): Promise<void> {
    const key = this.keys.urlLease(urlHash);
    const entry = await this.kv.get<UrlLease>(key);
    if (entry.value?.owner !== owner) return;
    await this.kv.atomic().check(entry).delete(key).commit();
  }

  /** Remembers a failed download and frees the URL's lease, in one commit. */
  async recordFailure(
    urlHash: string,
    owner: string,
    failure: { reason: FailureReason; detail: string; attempts: number },
  ): Promise<void> {
    const leaseKey = this.keys.urlLease(urlHash);
    const lease = await this.kv.get<UrlLease>(leaseKey);
    const op = this.kv.atomic().set(
      this.keys.urlFailure(urlHash),
      { ...failure, at: Date.now() } satisfies UrlFailure,
      { expireIn: FAILURE_MEMORY_MS },
    );
    if (lease.value?.owner === owner) op.check(lease).delete(leaseKey);
    await op.commit();
  }

  async lastFailure(urlHash: string): Promise<UrlFailure | null> {
    return (await this.kv.get<UrlFailure>(this.keys.urlFailure(urlHash))).value;
  }
}

import type { Keys } from "./kv_keys.ts";
import type { JobCounts, JobSnapshot } from "./jobs_repo.ts";
import { listPage } from "./page.ts";
import type { ImageRecord, ItemRecord, JobRecord, RepeatRecord } from "./records.ts";

/** Keys per `getMany`: Deno KV's limit. */
const GET_MANY = 10;

/** A job's record and counters as one read, with the versionstamps that order them. */
export interface JobEntries {
  snapshot: JobSnapshot | null;
  /** The highest versionstamp among the three keys: every commit up to it is visible. */
  versionstamp: string;
}

/** A failed item's state-index entry: its versionstamp is the commit that failed it. */
export interface FailedMark {
  index: number;
  versionstamp: string;
}

/**
 * Reads for following jobs: listings, watches and the scans behind event
 * streams and results files. Free of HTTP; writes nothing.
 */
export class JobReads {
  constructor(private readonly kv: Deno.Kv, private readonly keys: Keys) {}

  /** Newest first (job ids are ULIDs); pages resume before the last id listed. */
  async listJobs(
    limit: number,
    beforeId?: string,
  ): Promise<{ snapshots: JobSnapshot[]; last: string | null }> {
    const page = await listPage<JobRecord>(this.kv, this.keys.jobs(), limit, beforeId, {
      reverse: true,
    });
    const jobs = page.entries.map((e) => e.value);
    const counters = await this.#getMany<Deno.KvU64>(
      jobs.flatMap((j) => [
        this.keys.jobCount(j.id, "complete"),
        this.keys.jobCount(j.id, "failed"),
      ]),
    );
    const snapshots = jobs.map((job, i) =>
      snapshotOf(job, counters[2 * i].value, counters[2 * i + 1].value)
    );
    return { snapshots, last: page.last as string | null };
  }

  /** The job and its counters in one consistent read. */
  async jobEntries(jobId: string): Promise<JobEntries> {
    const entries = await this.kv.getMany<[JobRecord, Deno.KvU64, Deno.KvU64]>([
      this.keys.job(jobId),
      this.keys.jobCount(jobId, "complete"),
      this.keys.jobCount(jobId, "failed"),
    ]);
    const [job, complete, failed] = entries;
    const versionstamp = entries.map((e) => e.versionstamp ?? "").reduce(maxStamp, "");
    return {
      snapshot: job.value ? snapshotOf(job.value, complete.value, failed.value) : null,
      versionstamp,
    };
  }

  /**
   * Changes to the job's record and counters, as KV reports them. On a
   * local SQLite KV, writes by other processes are not reported: callers
   * also poll `jobEntries`.
   */
  watchJob(jobId: string): ReadableStream<unknown> {
    return this.kv.watch([
      this.keys.job(jobId),
      this.keys.jobCount(jobId, "complete"),
      this.keys.jobCount(jobId, "failed"),
    ]);
  }

  /** The lowest index still pending (or being fetched), or null when none is. */
  async firstPendingIndex(jobId: string): Promise<number | null> {
    for await (
      const e of this.kv.list({ prefix: this.keys.itemsByState(jobId, "pending") }, { limit: 1 })
    ) {
      return e.key.at(-1) as number;
    }
    return null;
  }

  /**
   * One past the highest item index written, and the versionstamp of that
   * item. Items of a large list are written in index order after the job
   * (see services/intake), so every index below `count` exists, and every
   * commit that wrote items is at most `stamp`.
   */
  async itemsWritten(jobId: string): Promise<{ count: number; stamp: string }> {
    const it = this.kv.list({ prefix: this.keys.itemsOf(jobId) }, { limit: 1, reverse: true });
    for await (const e of it) return { count: (e.key.at(-1) as number) + 1, stamp: e.versionstamp };
    return { count: 0, stamp: "" };
  }

  /** The failed-index entries of a job from item `fromIndex` on, in index order. */
  async *failedMarks(jobId: string, fromIndex: number): AsyncIterable<FailedMark> {
    const prefix = this.keys.itemsByState(jobId, "failed");
    const selector = fromIndex > 0 ? { prefix, start: [...prefix, fromIndex] } : { prefix };
    for await (const e of this.kv.list(selector, { batchSize: 1000 })) {
      yield { index: e.key.at(-1) as number, versionstamp: e.versionstamp };
    }
  }

  /** A job's items in index order after `afterIndex`, a page at a time. */
  async itemPage(
    jobId: string,
    limit: number,
    afterIndex?: number,
  ): Promise<{ items: { index: number; item: ItemRecord }[]; last: number | null }> {
    const page = await listPage<ItemRecord>(this.kv, this.keys.itemsOf(jobId), limit, afterIndex);
    return {
      items: page.entries.map((e) => ({ index: e.key.at(-1) as number, item: e.value })),
      last: page.last as number | null,
    };
  }

  /** Lines of a text/CSV list that repeated an earlier URL, in line order after `afterLine`. */
  async repeatPage(
    jobId: string,
    limit: number,
    afterLine?: number,
  ): Promise<{ repeats: { line: number; repeat: RepeatRecord }[]; last: number | null }> {
    const page = await listPage<RepeatRecord>(
      this.kv,
      this.keys.jobRepeatsOf(jobId),
      limit,
      afterLine,
    );
    return {
      repeats: page.entries.map((e) => ({ line: e.key.at(-1) as number, repeat: e.value })),
      last: page.last as number | null,
    };
  }

  /** True while a large list's items are still being written (see services/intake). */
  async stillWritingItems(jobId: string): Promise<boolean> {
    return (await this.kv.get(this.keys.jobIntake(jobId))).versionstamp !== null;
  }

  async items(jobId: string, indexes: number[]): Promise<(ItemRecord | null)[]> {
    const entries = await this.#getMany<ItemRecord>(indexes.map((n) => this.keys.item(jobId, n)));
    return entries.map((e) => e.value);
  }

  /** Image index records by URL hash (null where the URL is not stored). */
  async images(hashes: string[]): Promise<(ImageRecord | null)[]> {
    const entries = await this.#getMany<ImageRecord>(hashes.map((h) => this.keys.image(h)));
    return entries.map((e) => e.value);
  }

  async #getMany<T>(keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<T>[]> {
    const reads: Promise<Deno.KvEntryMaybe<T>[]>[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY) {
      reads.push(this.kv.getMany<T[]>(keys.slice(i, i + GET_MANY)));
    }
    return (await Promise.all(reads)).flat();
  }
}

function snapshotOf(
  job: JobRecord,
  complete: Deno.KvU64 | null,
  failed: Deno.KvU64 | null,
): JobSnapshot {
  const c = Number(complete?.value ?? 0n);
  const f = Number(failed?.value ?? 0n);
  const counts: JobCounts = { pending: job.total - c - f, complete: c, failed: f };
  return { job, counts };
}

/** Versionstamps are fixed-width hex: they compare as strings. */
export const maxStamp = (a: string, b: string): string => (a > b ? a : b);

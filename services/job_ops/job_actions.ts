import type { JobEndHook, JobMessage, JobSnapshot, JobsRepo } from "../store/jobs_repo.ts";
import { ttlOf } from "../store/job_ttl.ts";
import type { ItemRecord, JobRecord } from "../store/records.ts";
import { outboxOnEnd } from "../webhooks/outbox.ts";
import { minus } from "./counters.ts";

export type CancelResult =
  | { kind: "not_found" }
  /** The job had already ended without a cancel: nothing left to cancel. */
  | { kind: "finished"; snapshot: JobSnapshot }
  | { kind: "cancelled"; snapshot: JobSnapshot };

export type RetryResult =
  | { kind: "not_found" }
  /** Items are still pending (or another retry is moving them). */
  | { kind: "running"; snapshot: JobSnapshot }
  | { kind: "retried"; snapshot: JobSnapshot; requeued: number };

/** Items moved per commit: one check and three writes each, within KV's 100 checks. */
const BATCH = 50;

const CANCELLED_DETAIL = "the job was cancelled before this URL was downloaded";

/**
 * Cancel and retry, on the job's KV state only (no HTTP, no in-process
 * state), so any instance sharing the KV sees them and the worker can
 * finish one that a crash interrupted.
 *
 * Every item move is one versionstamp-checked commit with the state index
 * and the counter, like the worker's claims: a worker claim and a cancel
 * of the same item cannot both succeed.
 */
export class JobActions {
  /** What the commit that ends a job also writes: the webhook outbox entry. */
  readonly onEnd: JobEndHook;

  constructor(
    private readonly jobs: JobsRepo,
    private readonly opts: { useQueue: boolean },
  ) {
    this.onEnd = outboxOnEnd(jobs.keys);
  }

  /**
   * Stamps the job cancelled, turns its unclaimed pending items into failed
   * `cancelled` ones, and ends the job if no download is in flight.
   * Idempotent: a second cancel finds the stamp and does the sweep again.
   */
  async cancel(jobId: string): Promise<CancelResult> {
    const { kv, keys } = this.jobs;
    for (;;) {
      const entry = await kv.get<JobRecord>(keys.job(jobId));
      const job = entry.value;
      if (!job) return { kind: "not_found" };
      if (job.cancelled !== undefined) break;
      if (job.finished !== null) {
        return { kind: "finished", snapshot: (await this.jobs.get(jobId))! };
      }
      const next: JobRecord = { ...job, cancelled: Date.now() };
      const res = await kv.atomic().check(entry).set(entry.key, next, ttlOf(job)).commit();
      if (res.ok) break; // else the job changed meanwhile (started, finished): read it again
    }
    await this.cancelPending(jobId);
    await this.jobs.finalizeIfDone(jobId, this.onEnd);
    return { kind: "cancelled", snapshot: (await this.jobs.get(jobId))! };
  }

  /**
   * Turns every pending item nobody is downloading (pending, or claimed by
   * a worker whose lease ran out) into a failed `cancelled` item. Items a
   * live worker holds are left to finish. Returns how many were cancelled.
   */
  async cancelPending(jobId: string): Promise<number> {
    const job = await this.jobs.getJob(jobId);
    if (!job) return 0;
    return await this.#moveIndexed(job, "pending", (item, now) => {
      const claimable = item.state === "pending" ||
        (item.state === "fetching" && (item.leaseUntil ?? 0) < now);
      if (!claimable) return null;
      const { leaseOwner: _o, leaseUntil: _u, notBefore: _n, ...rest } = item;
      return {
        ...rest,
        state: "failed",
        reason: "cancelled",
        detail: CANCELLED_DETAIL,
        finishedAt: now,
      };
    });
  }

  /**
   * Queues the job's failed items again (attempt counts continue). Items
   * that failed as `invalid_url` at submission stay failed: no download
   * could fix them. A cancelled job is resumed. `running` while any item is
   * pending.
   */
  async retry(jobId: string): Promise<RetryResult> {
    const { kv, keys } = this.jobs;
    const [entry, snapshot] = await Promise.all([
      kv.get<JobRecord>(keys.job(jobId)),
      this.jobs.get(jobId),
    ]);
    const job = entry.value;
    if (!job || !snapshot) return { kind: "not_found" };
    if (snapshot.counts.pending > 0 || job.retrying) return { kind: "running", snapshot };
    if (!await this.#hasRetryable(jobId)) return { kind: "retried", snapshot, requeued: 0 };

    // Recorded first: if this process dies during the moves, the worker
    // finishes them (it sees `retrying`) before it may end the job again.
    const { cancelled: _, ...rest } = job;
    const next: JobRecord = { ...rest, finished: null, retried: Date.now(), retrying: true };
    const op = kv.atomic().check(entry)
      .set(entry.key, next, ttlOf(job))
      .set(keys.activeJob(jobId), null, ttlOf(job));
    if (this.opts.useQueue) op.enqueue({ kind: "job", jobId } satisfies JobMessage);
    if (!(await op.commit()).ok) {
      return { kind: "running", snapshot: (await this.jobs.get(jobId)) ?? snapshot };
    }
    const requeued = await this.requeueFailed(jobId);
    return { kind: "retried", snapshot: (await this.jobs.get(jobId))!, requeued };
  }

  /**
   * The moves of a retry: failed items (not `invalid_url`) that ended
   * before the retry go back to pending, then the `retrying` mark is
   * cleared. Safe to run twice at once (the handler and a worker).
   */
  async requeueFailed(jobId: string): Promise<number> {
    const { kv, keys } = this.jobs;
    const job = await this.jobs.getJob(jobId);
    if (!job?.retrying) return 0;
    const since = job.retried ?? Date.now();
    const moved = await this.#moveIndexed(job, "failed", (item) => {
      if (item.state !== "failed" || !isRetryable(item) || (item.finishedAt ?? 0) > since) {
        return null;
      }
      return {
        url: item.url,
        urlHash: item.urlHash,
        state: "pending",
        attempts: item.attempts,
        ...(item.line !== undefined ? { line: item.line } : {}),
        ...(item.columns ? { columns: item.columns } : {}),
      };
    });
    for (;;) {
      const entry = await kv.get<JobRecord>(keys.job(jobId));
      if (!entry.value?.retrying) break;
      const { retrying: _, ...done } = entry.value;
      if ((await kv.atomic().check(entry).set(entry.key, done, ttlOf(done)).commit()).ok) break;
    }
    return moved;
  }

  async #hasRetryable(jobId: string): Promise<boolean> {
    const { kv, keys } = this.jobs;
    let indexes: number[] = [];
    const anyRetryable = async () =>
      (await this.jobs.getItems(jobId, indexes)).some((item) => item && isRetryable(item));
    for await (const e of kv.list({ prefix: keys.itemsByState(jobId, "failed") })) {
      indexes.push(e.key.at(-1) as number);
      if (indexes.length === BATCH) {
        if (await anyRetryable()) return true;
        indexes = [];
      }
    }
    return indexes.length > 0 && await anyRetryable();
  }

  /**
   * Walks the items indexed under `from` and moves each one `change` maps
   * to a new record into that record's state, with the state index and the
   * failed counter, BATCH items per commit, each item guarded by its
   * versionstamp. A batch that loses a race is redone item by item.
   */
  async #moveIndexed(
    job: JobRecord,
    from: "pending" | "failed",
    change: (item: ItemRecord, now: number) => ItemRecord | null,
  ): Promise<number> {
    const { kv, keys } = this.jobs;
    let moved = 0;
    let indexes: number[] = [];
    const flush = async () => {
      moved += await this.#moveBatch(job, indexes, change);
      indexes = [];
    };
    for await (
      const e of kv.list({ prefix: keys.itemsByState(job.id, from) }, { batchSize: 500 })
    ) {
      indexes.push(e.key.at(-1) as number);
      if (indexes.length === BATCH) await flush();
    }
    if (indexes.length > 0) await flush();
    return moved;
  }

  async #moveBatch(
    job: JobRecord,
    indexes: number[],
    change: (item: ItemRecord, now: number) => ItemRecord | null,
  ): Promise<number> {
    const { kv, keys } = this.jobs;
    const entries: Deno.KvEntryMaybe<ItemRecord>[] = [];
    for (let i = 0; i < indexes.length; i += 10) {
      entries.push(
        ...await kv.getMany<ItemRecord[]>(
          indexes.slice(i, i + 10).map((n) => keys.item(job.id, n)),
        ),
      );
    }
    const now = Date.now();
    const moves = entries.flatMap((entry, i) => {
      const next = entry.value ? change(entry.value, now) : null;
      return next ? [{ entry, index: indexes[i], from: entry.value!.state, next }] : [];
    });
    if (moves.length === 0) return 0;
    const commit = (list: typeof moves) => {
      const ttl = ttlOf(job);
      const op = kv.atomic();
      let failedDelta = 0;
      for (const { entry, index, from, next } of list) {
        const was = from === "fetching" ? "pending" : from;
        const to = next.state === "failed" ? "failed" : "pending";
        op.check(entry)
          .set(entry.key, next, ttl)
          .delete(keys.itemByState(job.id, was as "pending" | "failed", index))
          .set(keys.itemByState(job.id, to, index), null, ttl);
        failedDelta += (to === "failed" ? 1 : 0) - (was === "failed" ? 1 : 0);
      }
      // The failed counter only ever changes by the items moved in this commit.
      const addend = failedDelta >= 0 ? BigInt(failedDelta) : minus(-failedDelta);
      if (addend !== 0n) op.sum(keys.jobCount(job.id, "failed"), addend);
      return op.commit();
    };
    if ((await commit(moves)).ok) return moves.length;
    // Someone (a worker's claim, a concurrent cancel) changed an item: one by one.
    let moved = 0;
    for (const { index } of moves) {
      const entry = await kv.get<ItemRecord>(keys.item(job.id, index));
      const next = entry.value ? change(entry.value, Date.now()) : null;
      if (!next) continue;
      if ((await commit([{ entry, index, from: entry.value!.state, next }])).ok) moved++;
    }
    return moved;
  }
}

/** Whether a retry may queue the item again: `invalid_url` items never download. */
function isRetryable(item: ItemRecord): boolean {
  return item.reason !== "invalid_url";
}

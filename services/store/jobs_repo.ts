import type { FailureReason } from "../fetch/reasons.ts";
import { commitInBatches, type Mutation } from "./kv_bulk.ts";
import type { CountedState, ItemIndexState, Keys } from "./kv_keys.ts";
import type { ImagesRepo } from "./images_repo.ts";
import { ttlOf } from "./job_ttl.ts";
import type { AtomicWriter } from "./kv_batcher.ts";
import { listPage } from "./page.ts";
import type { ItemRecord, JobRecord } from "./records.ts";

/** The message put on the KV queue: only a nudge, the job's KV state is the truth. */
export interface JobMessage {
  kind: "job";
  jobId: string;
}

export interface JobCounts {
  pending: number;
  complete: number;
  failed: number;
}

export interface JobSnapshot {
  job: JobRecord;
  counts: JobCounts;
}

/** How an item ended. */
export interface Outcome {
  state: CountedState;
  reason?: FailureReason;
  detail?: string;
  attempts: number;
  /** Complete by a 304: the stored image was confirmed, not downloaded. */
  revalidated?: boolean;
}

/** A claimed item: the versionstamp proves the claim in later commits. */
export interface Claim {
  jobId: string;
  index: number;
  item: ItemRecord;
  versionstamp: string;
  /** The job's `expiresAt`: every write of the item carries the time left (see job_ttl.ts). */
  expiresAt?: number;
}

export interface ItemPage {
  items: { index: number; item: ItemRecord }[];
  /** Item index to resume after, or null on the last page. */
  last: number | null;
}

/** The state the API shows: `fetching` is `pending` with a lease. */
export const apiState = (s: ItemRecord["state"]): ItemIndexState =>
  s === "fetching" ? "pending" : s;

/** Jobs and their items in KV. Free of HTTP; the worker and the routes both use it. */
export class JobsRepo {
  constructor(
    /** Public for the job operations (services/job_ops) that write beside the repo. */
    readonly kv: Deno.Kv,
    readonly keys: Keys,
    private readonly images: ImagesRepo,
    private readonly useQueue: boolean,
  ) {}

  /**
   * Deletes the items of jobs whose creation never finished (the process
   * died mid-POST) once their marker is older than `olderThanMs`. Returns
   * how many such jobs were collected.
   */
  async collectAbandoned(olderThanMs: number, now = Date.now()): Promise<number> {
    let collected = 0;
    for await (const marker of this.kv.list<number>({ prefix: this.keys.creatingJobs() })) {
      if (now - marker.value < olderThanMs) continue;
      const jobId = marker.key.at(-1) as string;
      // A job record means the final commit happened; it also removed the marker.
      if ((await this.kv.get(this.keys.job(jobId))).versionstamp === null) {
        await deleteUnpublishedJob(this.kv, this.keys, jobId);
        collected++;
      }
      await this.kv.delete(marker.key);
    }
    return collected;
  }

  async get(jobId: string): Promise<JobSnapshot | null> {
    const [job, complete, failed] = await this.kv.getMany<[JobRecord, Deno.KvU64, Deno.KvU64]>([
      this.keys.job(jobId),
      this.keys.jobCount(jobId, "complete"),
      this.keys.jobCount(jobId, "failed"),
    ]);
    if (!job.value || isExpired(job.value)) return null;
    const c = Number(complete.value?.value ?? 0n);
    const f = Number(failed.value?.value ?? 0n);
    return {
      job: job.value,
      counts: { pending: job.value.total - c - f, complete: c, failed: f },
    };
  }

  /** Pages through a job's items in submission order, optionally of one state. */
  async listItems(
    jobId: string,
    opts: { state?: ItemIndexState; limit: number; after?: number },
  ): Promise<ItemPage> {
    if (!opts.state) {
      const page = await listPage<ItemRecord>(
        this.kv,
        this.keys.itemsOf(jobId),
        opts.limit,
        opts.after,
      );
      return {
        items: page.entries.map((e) => ({ index: e.key.at(-1) as number, item: e.value })),
        last: page.last as number | null,
      };
    }
    const prefix = this.keys.itemsByState(jobId, opts.state);
    const page = await listPage<null>(this.kv, prefix, opts.limit, opts.after);
    const indexes = page.entries.map((e) => e.key.at(-1) as number);
    const records = await this.getItems(jobId, indexes);
    const items: ItemPage["items"] = [];
    indexes.forEach((index, i) => {
      const item = records[i];
      if (item) items.push({ index, item });
    });
    return { items, last: page.last as number | null };
  }

  async getItems(jobId: string, indexes: number[]): Promise<(ItemRecord | null)[]> {
    const batches: Promise<Deno.KvEntryMaybe<ItemRecord>[]>[] = [];
    for (let i = 0; i < indexes.length; i += 10) {
      batches.push(
        this.kv.getMany<ItemRecord[]>(
          indexes.slice(i, i + 10).map((n) => this.keys.item(jobId, n)),
        ),
      );
    }
    return (await Promise.all(batches)).flat().map((e) => e.value);
  }

  /**
   * A job's item entries in index order from `fromIndex` on, read in large
   * batches: the worker scans these rather than reading items one by one.
   */
  async *itemEntries(jobId: string, fromIndex = 0): AsyncIterable<Deno.KvEntry<ItemRecord>> {
    const prefix = this.keys.itemsOf(jobId);
    const selector = fromIndex > 0 ? { prefix, start: [...prefix, fromIndex] } : { prefix };
    yield* this.kv.list<ItemRecord>(selector, { batchSize: 500 });
  }

  async *activeJobIds(): AsyncIterable<string> {
    for await (const e of this.kv.list({ prefix: this.keys.activeJobs() })) {
      yield e.key.at(-1) as string;
    }
  }

  /** An item with its versionstamp, for claims. */
  async itemEntry(jobId: string, index: number): Promise<Deno.KvEntryMaybe<ItemRecord>> {
    return await this.kv.get<ItemRecord>(this.keys.item(jobId, index));
  }

  /**
   * Adds to `op` the claim of an item read as `entry`: it becomes `fetching`
   * with a lease, guarded by the entry's versionstamp. The returned claim's
   * versionstamp must be set from the commit result.
   */
  addClaim(
    op: AtomicWriter,
    jobId: string,
    index: number,
    entry: Deno.KvEntry<ItemRecord>,
    owner: string,
    leaseMs: number,
    patch: Partial<ItemRecord> = {},
    expiresAt?: number,
  ): Claim {
    const { notBefore: _, ...rest } = entry.value;
    const item: ItemRecord = {
      ...rest,
      ...patch,
      state: "fetching",
      leaseOwner: owner,
      leaseUntil: Date.now() + leaseMs,
    };
    op.check(entry).set(entry.key, item, ttlOf({ expiresAt }));
    return { jobId, index, item, versionstamp: entry.versionstamp, expiresAt };
  }

  /**
   * Takes an item for this worker if it is pending and due, or if its lease
   * has expired (its worker died). Null when someone else has it or it is done.
   */
  async claim(jobId: string, index: number, owner: string, leaseMs: number): Promise<Claim | null> {
    const entry = await this.itemEntry(jobId, index);
    if (!entry.value || !isClaimable(entry.value, Date.now())) return null;
    const op = this.kv.atomic();
    const claim = this.addClaim(
      op,
      jobId,
      index,
      entry as Deno.KvEntry<ItemRecord>,
      owner,
      leaseMs,
    );
    const res = await op.commit();
    if (!res.ok) return null;
    claim.versionstamp = res.versionstamp;
    return claim;
  }

  /** Extends a claim's lease; false when the claim was lost. */
  async renew(claim: Claim, leaseMs: number): Promise<boolean> {
    const next: ItemRecord = { ...claim.item, leaseUntil: Date.now() + leaseMs };
    const key = this.keys.item(claim.jobId, claim.index);
    const res = await this.kv.atomic()
      .check({ key, versionstamp: claim.versionstamp })
      .set(key, next, ttlOf(claim))
      .commit();
    if (!res.ok) return false;
    claim.item = next;
    claim.versionstamp = res.versionstamp;
    return true;
  }

  /** Adds to `op`: a claimed (or read) item goes back to pending, due at `notBefore`. */
  addRelease(
    op: AtomicWriter,
    claim: Claim,
    notBefore: number,
    patch: Partial<ItemRecord> = {},
  ): void {
    const { leaseOwner: _o, leaseUntil: _u, ...rest } = claim.item;
    const key = this.keys.item(claim.jobId, claim.index);
    op.check({ key, versionstamp: claim.versionstamp })
      .set(
        key,
        { ...rest, ...patch, state: "pending", notBefore } satisfies ItemRecord,
        ttlOf(claim),
      );
  }

  /**
   * Adds to `op` the move of a claimed item to its final state, with its
   * state index entry and its job's counter, guarded by the claim.
   */
  addFinish(op: AtomicWriter, claim: Claim, outcome: Outcome): void {
    const { jobId, index } = claim;
    const next: ItemRecord = {
      url: claim.item.url,
      urlHash: claim.item.urlHash,
      state: outcome.state,
      attempts: outcome.attempts,
      finishedAt: Date.now(),
      ...(outcome.reason ? { reason: outcome.reason, detail: outcome.detail } : {}),
      ...(outcome.revalidated ? { revalidated: true as const } : {}),
      // Where the URL came from in a text/CSV body, for the results file.
      ...(claim.item.line !== undefined ? { line: claim.item.line } : {}),
      ...(claim.item.columns ? { columns: claim.item.columns } : {}),
    };
    const key = this.keys.item(jobId, index);
    const ttl = ttlOf(claim);
    // The counter's `sum` cannot carry an expiry (and drops one): the sweep deletes counters.
    op.check({ key, versionstamp: claim.versionstamp })
      .set(key, next, ttl)
      .delete(this.keys.itemByState(jobId, "pending", index))
      .set(this.keys.itemByState(jobId, outcome.state, index), null, ttl)
      .sum(this.keys.jobCount(jobId, outcome.state), 1n);
  }

  /** Moves a claimed item to its final state. False when the claim was lost. */
  async finish(claim: Claim, outcome: Outcome): Promise<boolean> {
    const op = this.kv.atomic();
    this.addFinish(op, claim, outcome);
    return (await op.commit()).ok;
  }

  /** Records that work on the job began (once; losing the race is fine). */
  async markStarted(job: JobRecord): Promise<void> {
    if (job.started !== null) return;
    const entry = await this.kv.get<JobRecord>(this.keys.job(job.id));
    if (!entry.value || entry.value.started !== null) return;
    await this.kv.atomic().check(entry)
      .set(entry.key, { ...entry.value, started: Date.now() }, ttlOf(entry.value))
      .commit();
  }

  /**
   * Stamps `finished` and retires the job from the active set once every
   * item is done. `onEnd` adds to the commit that stamps `finished` (once
   * per ending), e.g. the webhook outbox entry.
   */
  async finalizeIfDone(jobId: string, onEnd?: JobEndHook): Promise<boolean> {
    const [entry, complete, failed] = await this.kv.getMany<[JobRecord, Deno.KvU64, Deno.KvU64]>([
      this.keys.job(jobId),
      this.keys.jobCount(jobId, "complete"),
      this.keys.jobCount(jobId, "failed"),
    ]);
    const job = entry.value;
    if (!job) return true;
    // A retry is moving failed items back to pending: the counts are not final.
    if (job.retrying) return false;
    const done = Number(complete.value?.value ?? 0n) + Number(failed.value?.value ?? 0n);
    if (done < job.total) return false;
    const op = this.kv.atomic().delete(this.keys.activeJob(jobId));
    if (job.finished === null) {
      const now = Date.now();
      const ended: JobRecord = { ...job, finished: now, started: job.started ?? now };
      op.check(entry).set(entry.key, ended, ttlOf(job));
      const counts = {
        pending: 0,
        complete: Number(complete.value?.value ?? 0n),
        failed: Number(failed.value?.value ?? 0n),
      };
      onEnd?.(op, { job: ended, counts });
    }
    await op.commit();
    return true;
  }

  async getJob(jobId: string): Promise<JobRecord | null> {
    const job = (await this.kv.get<JobRecord>(this.keys.job(jobId))).value;
    return job && !isExpired(job) ? job : null;
  }
}

/** Adds writes to the commit that ends a job (see `finalizeIfDone`). */
export type JobEndHook = (op: Deno.AtomicOperation, ended: JobSnapshot) => void;

/**
 * Past its `expiresAt`: gone for the API and the worker at once, although
 * KV removes expired keys only about once a minute (and the sweep deletes
 * what is left).
 */
export function isExpired(job: JobRecord, now = Date.now()): boolean {
  return job.expiresAt !== undefined && job.expiresAt <= now;
}

/** Whether a worker may take the item now. */
export function isClaimable(item: ItemRecord, now: number): boolean {
  if (item.state === "pending") return (item.notBefore ?? 0) <= now;
  if (item.state === "fetching") return (item.leaseUntil ?? 0) < now;
  return false;
}

/**
 * Deletes of every key under a job that is listed by prefix: items, their
 * state index, a large list's chunks and its repeated lines. The job's
 * single keys (record, counters, markers) are the caller's.
 */
export async function jobTreeDeletes(kv: Deno.Kv, keys: Keys, jobId: string): Promise<Mutation[]> {
  const mutations: Mutation[] = [];
  const prefixes = [
    keys.itemsOf(jobId),
    keys.itemStatesOf(jobId),
    keys.jobIntakeChunksOf(jobId),
    keys.jobRepeatsOf(jobId),
  ];
  for (const prefix of prefixes) {
    for await (const e of kv.list({ prefix }, { batchSize: 1000 })) {
      mutations.push({ type: "delete", key: e.key, size: 80 });
    }
  }
  return mutations;
}

/**
 * Deletes what a job that never became visible (no job record) had written.
 * Its creation marker is the caller's to remove.
 */
export async function deleteUnpublishedJob(kv: Deno.Kv, keys: Keys, jobId: string): Promise<void> {
  await commitInBatches(kv, await jobTreeDeletes(kv, keys, jobId));
}

/**
 * Writes a submitted list as a job. Two ways, one outcome:
 *
 * - Lists of up to `directMax` entries get their items written before the
 *   job record (as the service always did): the 202 already shows URLs
 *   that were stored as complete.
 * - Larger lists are committed as they were submitted, in a few large
 *   chunk values, together with the job record: that is the durable record
 *   of the job, and it takes far fewer commits than an item per URL (the
 *   202 for 100,000 URLs comes well under a second). The items are then
 *   materialised chunk by chunk, in order, by `materialise` (called by the
 *   worker before each pass over a job, so the sweep resumes it after a
 *   crash). Each chunk becomes its items in one commit that also advances
 *   the progress record, guarded by that record: done exactly once.
 *
 * Either way the job becomes visible in one final commit, which also claims
 * the `Idempotency-Key` (guarded by "not claimed yet") and nudges the worker.
 */
import { ttlOf } from "../store/job_ttl.ts";
import { commitInBatches, type Mutation } from "../store/kv_bulk.ts";
import type { Keys } from "../store/kv_keys.ts";
import type { ImagesRepo } from "../store/images_repo.ts";
import type { IdempotencyRecord, IdempotencyRepo } from "../store/idempotency_repo.ts";
import { ulid, urlHash } from "../store/ids.ts";
import { deleteUnpublishedJob, type JobMessage, type JobSnapshot } from "../store/jobs_repo.ts";
import type { ItemRecord, JobRecord, RepeatRecord, VariantSpec } from "../store/records.ts";
import { outboxOnEnd } from "../webhooks/outbox.ts";
import type { ListEntry, RepeatedLine } from "./list_parser.ts";

/** A list ready to become a job. */
export interface NewJob {
  entries: ListEntry[];
  repeats: RepeatedLine[];
  refresh: boolean;
  source: NonNullable<JobRecord["source"]>;
  csvHeader?: string[];
  callbackUrl?: string;
  variants?: VariantSpec[];
}

export type CreateOutcome =
  | { created: true; snapshot: JobSnapshot }
  /** The `Idempotency-Key` was claimed first by another request. */
  | { created: false; claimed: IdempotencyRecord };

/** The progress of a large list's materialisation: chunks below `next` are items. */
interface IntakeProgress {
  next: number;
  chunks: number;
}

/** Part of a large list as submitted (stored as JSON): entries from item index `start` on, and repeated lines. */
interface IntakeChunk {
  start: number;
  entries: ListEntry[];
  repeats: RepeatedLine[];
}

/**
 * Lists up to this many entries get their items before the 202. Above it
 * the chunked path is faster even with a busy worker (`deno task bench
 * submit`: 10,000 URLs took 400-780 ms item by item; 100,000 chunked take
 * 420-670 ms), and up to it `GET /jobs/{id}` lists the items anyway.
 */
export const DIRECT_MAX = 1_000;

/** Per chunk: its mutations (2 per entry, 1 per repeat) must fit one commit with room to spare. */
const CHUNK_MUTATIONS = 900;
/** Per chunk value, in approximate bytes (KV values are at most 64 KiB). */
const CHUNK_BYTES = 40_000;
/** A chunk's encoded size limit, under KV's 64 KiB per value. */
const MAX_CHUNK_VALUE_BYTES = 60_000;

export class JobWriter {
  constructor(
    private readonly kv: Deno.Kv,
    private readonly keys: Keys,
    private readonly images: ImagesRepo,
    private readonly idempotency: IdempotencyRepo,
    private readonly useQueue: boolean,
    private readonly directMax = DIRECT_MAX,
    /** `JOB_TTL_HOURS` in ms: every key the job writes carries what is left of it. */
    private readonly jobTtlMs?: number,
  ) {}

  async create(
    spec: NewJob,
    claim?: { key: string; fingerprint: string },
  ): Promise<CreateOutcome> {
    const id = ulid();
    const created = Date.now();
    const expiresAt = this.jobTtlMs === undefined ? undefined : created + this.jobTtlMs;
    const ttl = ttlOf({ expiresAt }, created);
    // The marker goes first: items written without a job are then found by the sweep.
    const marked = this.kv.set(this.keys.creatingJob(id), created);
    const invalid = spec.entries.filter((e) => e.invalid !== undefined).length;
    const direct = spec.entries.length + spec.repeats.length <= this.directMax;
    let stored = 0;
    let chunkCount = 0;
    if (direct) {
      const hashes = spec.entries.map((e) => urlHash(e.url));
      const [storedIndexes] = await Promise.all([
        this.#stored(spec.entries, hashes, spec.refresh || !!spec.variants),
        marked,
      ]);
      stored = storedIndexes.size;
      const mutations: Mutation[] = [];
      spec.entries.forEach((entry, index) => {
        const done = storedIndexes.has(index);
        mutations.push(...this.#itemMutations(id, index, entry, hashes[index], done, created));
      });
      for (const r of spec.repeats) mutations.push(this.#repeatMutation(id, r));
      await commitInBatches(this.kv, mutations.map((m) => ({ ...m, ...ttl })));
    } else {
      await marked;
      // One string per chunk: far cheaper for KV to encode than thousands of small objects.
      const chunks = chunked(spec.entries, spec.repeats).flatMap(encoded);
      await commitInBatches(
        this.kv,
        chunks.map((value, n) => ({
          type: "set",
          key: this.keys.jobIntakeChunk(id, n),
          value,
          size: value.length * 2 + 100,
          ...ttl,
        })),
      );
      chunkCount = chunks.length;
    }

    const total = spec.entries.length;
    const allDone = direct && stored + invalid === total;
    const job: JobRecord = {
      id,
      created,
      total,
      refresh: spec.refresh,
      started: allDone ? created : null,
      finished: allDone ? created : null,
      source: spec.source,
      ...(spec.csvHeader ? { csvHeader: spec.csvHeader } : {}),
      ...(spec.callbackUrl ? { callbackUrl: spec.callbackUrl } : {}),
      ...(spec.variants ? { variants: spec.variants } : {}),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    };
    const op = this.kv.atomic()
      .check({ key: this.keys.job(id), versionstamp: null })
      .set(this.keys.job(id), job, ttl)
      .set(this.keys.jobCount(id, "complete"), new Deno.KvU64(BigInt(stored)))
      .set(this.keys.jobCount(id, "failed"), new Deno.KvU64(BigInt(invalid)))
      .delete(this.keys.creatingJob(id));
    if (!direct) {
      op.set(
        this.keys.jobIntake(id),
        { next: 0, chunks: chunkCount } satisfies IntakeProgress,
        ttl,
      );
    }
    if (claim) {
      this.idempotency.addClaim(op, claim.key, { jobId: id, fingerprint: claim.fingerprint });
    }
    const counts = { pending: total - stored - invalid, complete: stored, failed: invalid };
    if (!allDone) {
      op.set(this.keys.activeJob(id), null, ttl);
      if (this.useQueue) op.enqueue({ kind: "job", jobId: id } satisfies JobMessage);
    } else {
      // Ended at submission (every URL stored or invalid): its webhook goes out as for any end.
      outboxOnEnd(this.keys)(op, { job, counts });
    }
    const res = await op.commit();
    if (!res.ok) {
      const winner = claim ? await this.idempotency.get(claim.key) : null;
      if (!winner) throw new Error(`job ${id} could not be recorded`);
      // Best effort: should this fail, the marker lets the sweep collect it later.
      await this.#discard(id).catch(() => {});
      return { created: false, claimed: winner };
    }
    return { created: true, snapshot: { job, counts } };
  }

  /**
   * Writes the items of a large list that are not written yet, chunk by
   * chunk in order. Safe to run from several places at once, and again
   * after a crash: each chunk is written once, guarded by the progress record.
   */
  async materialise(jobId: string): Promise<void> {
    for (;;) {
      const progress = await this.kv.get<IntakeProgress>(this.keys.jobIntake(jobId));
      if (!progress.value) return;
      const { next, chunks } = progress.value;
      const [chunkEntry, jobEntry] = await this.kv.getMany<[string, JobRecord]>([
        this.keys.jobIntakeChunk(jobId, next),
        this.keys.job(jobId),
      ]);
      const chunk = chunkEntry.value ? JSON.parse(chunkEntry.value) as IntakeChunk : null;
      const job = jobEntry.value;
      if (!chunk || !job) {
        // Nothing left to write from (the job was deleted): drop the record.
        await this.kv.atomic().check(progress).delete(progress.key).commit();
        return;
      }
      const hashes = chunk.entries.map((e) => urlHash(e.url));
      const storedIndexes = await this.#stored(
        chunk.entries,
        hashes,
        job.refresh || !!job.variants,
      );
      const now = Date.now();
      const ttl = ttlOf(job, now);
      const op = this.kv.atomic().check(progress).delete(chunkEntry.key);
      chunk.entries.forEach((entry, i) => {
        const done = storedIndexes.has(i);
        for (const m of this.#itemMutations(jobId, chunk.start + i, entry, hashes[i], done, now)) {
          if (m.type === "set") op.set(m.key, m.value, ttl);
        }
      });
      for (const r of chunk.repeats) {
        const m = this.#repeatMutation(jobId, r);
        if (m.type === "set") op.set(m.key, m.value, ttl);
      }
      if (storedIndexes.size > 0) {
        op.sum(this.keys.jobCount(jobId, "complete"), BigInt(storedIndexes.size));
      }
      if (next + 1 >= chunks) op.delete(progress.key);
      else op.set(progress.key, { next: next + 1, chunks } satisfies IntakeProgress, ttl);
      await op.commit(); // A failed check means another materialiser wrote it: read again.
    }
  }

  /** Deletes what a job that never became visible had written, then its marker. */
  async #discard(jobId: string): Promise<void> {
    await deleteUnpublishedJob(this.kv, this.keys, jobId);
    await this.kv.delete(this.keys.creatingJob(jobId));
  }

  /**
   * Indexes of the valid entries whose URL is stored already. None when
   * every item needs the worker: a refresh, or variants to compute.
   */
  async #stored(entries: ListEntry[], hashes: string[], none: boolean): Promise<Set<number>> {
    if (none) return new Set();
    const valid = entries.flatMap((e, i) => e.invalid === undefined ? [i] : []);
    const found = await this.images.whichExist(valid.map((i) => hashes[i]));
    return new Set([...found].map((n) => valid[n]));
  }

  #itemMutations(
    jobId: string,
    index: number,
    entry: ListEntry,
    hash: string,
    stored: boolean,
    now: number,
  ): Mutation[] {
    const state = entry.invalid !== undefined ? "failed" : stored ? "complete" : "pending";
    const item: ItemRecord = {
      url: entry.url,
      urlHash: hash,
      state,
      attempts: 0,
      ...(state !== "pending" ? { finishedAt: now } : {}),
      ...(entry.invalid !== undefined ? { reason: "invalid_url", detail: entry.invalid } : {}),
      ...(entry.line !== undefined ? { line: entry.line } : {}),
      ...(entry.columns ? { columns: entry.columns } : {}),
    };
    return [
      { type: "set", key: this.keys.item(jobId, index), value: item, size: entrySize(entry) + 200 },
      { type: "set", key: this.keys.itemByState(jobId, state, index), value: null, size: 80 },
    ];
  }

  #repeatMutation(jobId: string, r: RepeatedLine): Mutation {
    const value: RepeatRecord = { index: r.index, ...(r.columns ? { columns: r.columns } : {}) };
    return {
      type: "set",
      key: this.keys.jobRepeat(jobId, r.line),
      value,
      size: (r.columns ? entrySize({ url: "", columns: r.columns }) : 0) + 100,
    };
  }
}

function entrySize(e: ListEntry): number {
  let n = e.url.length + (e.invalid?.length ?? 0) + 40;
  for (const c of e.columns ?? []) n += c.length + 4;
  return n;
}

/**
 * A chunk as JSON, split in two until each part fits a KV value (64 KiB):
 * the estimate that made the chunk counts characters, and a string outside
 * Latin-1 takes two bytes per character.
 */
function encoded(chunk: IntakeChunk): string[] {
  const json = JSON.stringify(chunk);
  const bytes = /[\u0100-\uffff]/.test(json) ? json.length * 2 : json.length;
  if (bytes <= MAX_CHUNK_VALUE_BYTES || chunk.entries.length + chunk.repeats.length <= 1) {
    return [json];
  }
  const half = Math.ceil(chunk.entries.length / 2);
  const repeatsHalf = Math.ceil(chunk.repeats.length / 2);
  return [
    ...encoded({
      start: chunk.start,
      entries: chunk.entries.slice(0, half),
      repeats: chunk.repeats.slice(0, repeatsHalf),
    }),
    ...encoded({
      start: chunk.start + half,
      entries: chunk.entries.slice(half),
      repeats: chunk.repeats.slice(repeatsHalf),
    }),
  ];
}

/** Splits a list into chunks that each fit one KV value and one materialising commit. */
function chunked(entries: ListEntry[], repeats: RepeatedLine[]): IntakeChunk[] {
  const chunks: IntakeChunk[] = [];
  let current: IntakeChunk = { start: 0, entries: [], repeats: [] };
  let mutations = 0;
  let bytes = 0;
  let r = 0;
  const flush = (start: number) => {
    if (current.entries.length + current.repeats.length > 0) chunks.push(current);
    current = { start, entries: [], repeats: [] };
    mutations = 0;
    bytes = 0;
  };
  const add = (size: number, cost: number, put: () => void, nextIndex: number) => {
    if (mutations + cost > CHUNK_MUTATIONS || bytes + size > CHUNK_BYTES) flush(nextIndex);
    put();
    mutations += cost;
    bytes += size;
  };
  entries.forEach((entry, index) => {
    // Repeats go with the chunk that holds (or follows) the item they repeat.
    while (r < repeats.length && repeats[r].index < index) {
      const rep = repeats[r++];
      add(entrySize({ url: "", columns: rep.columns }), 1, () => current.repeats.push(rep), index);
    }
    add(entrySize(entry), 2, () => current.entries.push(entry), index);
  });
  while (r < repeats.length) {
    const rep = repeats[r++];
    add(
      entrySize({ url: "", columns: rep.columns }),
      1,
      () => current.repeats.push(rep),
      entries.length,
    );
  }
  flush(entries.length);
  return chunks;
}

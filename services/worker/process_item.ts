import type { BlobStore, StagedBlob } from "../blobs/blob_store.ts";
import type { AttemptResult, Fetcher, RevalidateResult } from "../fetch/fetcher.ts";
import { retryDelayMs } from "../fetch/retry.ts";
import { BlobGone } from "../store/blob_refs.ts";
import { freshImage } from "../store/fresh_image.ts";
import type { ImagesRepo, UrlState } from "../store/images_repo.ts";
import type { Claim, JobsRepo, Outcome } from "../store/jobs_repo.ts";
import { isClaimable } from "../store/jobs_repo.ts";
import type { KvBatcher } from "../store/kv_batcher.ts";
import { mergeVariants } from "../images/variant_specs.ts";
import type { ImageRecord, ItemRecord, JobRecord, VariantSpec } from "../store/records.ts";
import { conditionalFor, revalidated } from "./revalidation.ts";
import { DroppedTask } from "./scheduler.ts";

type Failed = Extract<AttemptResult, { ok: false }>;

/** What a variant is computed from: the stored bytes and what is known of them. */
export type VariantSource = Pick<
  ImageRecord,
  "sha256" | "bytes" | "format" | "contentType" | "width" | "height"
>;

/** How soon to look again at a URL another worker is downloading. */
const WAIT_FOR_OTHER_DOWNLOAD_MS = 200;

export interface ItemContext {
  /** Group commit: every per-item commit goes through it. */
  batcher: KvBatcher;
  jobs: JobsRepo;
  images: ImagesRepo;
  fetcher: Fetcher;
  /** To check a stored blob is still whole before asking the origin to confirm it. */
  blobs: Pick<BlobStore, "stat">;
  owner: string;
  leaseMs: number;
  retries: number;
  retryBaseMs: number;
  retryAfterCapMs: number;
  /** Aborted on shutdown: the attempt stops and the item goes back to pending. */
  signal: AbortSignal;
  /** Whether the job has been cancelled (read from KV, briefly cached): then nothing more starts. */
  isCancelled?: (jobId: string) => boolean | Promise<boolean>;
  /**
   * Computes (or finds cached) the variants a job asks for of a stored
   * image; resolves when done, whatever each variant's outcome. Absent
   * where transforms are unavailable: the specs are still recorded.
   */
  variants?: (source: VariantSource, specs: VariantSpec[]) => Promise<void>;
}

/**
 * Runs a download in a download slot. The download calls `release` once
 * the network part is over, so flushing to disk and committing to KV do
 * not hold the slot. Rejects with DroppedTask if the download never starts.
 */
export type SlotRunner = (download: (release: () => void) => Promise<void>) => Promise<void>;

/** Runs the download at once, with no limit: for callers that schedule nothing. */
const noSlots: SlotRunner = (download) => download(() => {});

/**
 * Takes one item of a job through one step: settle it from a download made
 * for another job, wait for one in progress, or claim it and download it
 * under a per-URL lease. Every step is one guarded KV commit, so a duplicate
 * delivery or another worker that got there first makes it a no-op.
 *
 * Reading and claiming happen before the item asks for a download slot:
 * a slot is held by the network part alone, as in a plain download loop.
 */
export async function processItem(
  ctx: ItemContext,
  job: JobRecord,
  index: number,
  seen?: Deno.KvEntry<ItemRecord>,
  withSlot: SlotRunner = noSlots,
): Promise<void> {
  let entry: Deno.KvEntryMaybe<ItemRecord> = seen ?? await ctx.jobs.itemEntry(job.id, index);
  for (let tries = 0; tries < 2; tries++) {
    if (!entry.value || !isClaimable(entry.value, Date.now())) return;
    const done = await step(ctx, job, index, entry as Deno.KvEntry<ItemRecord>, withSlot);
    if (done) return;
    // The item changed since it was read (the pump's copy may be old): read it once more.
    entry = await ctx.jobs.itemEntry(job.id, index);
  }
}

/** One attempt at moving the item on; false when its entry was stale. */
async function step(
  ctx: ItemContext,
  job: JobRecord,
  index: number,
  entry: Deno.KvEntry<ItemRecord>,
  withSlot: SlotRunner,
): Promise<boolean> {
  // Cancelled: leave it pending; the job's pump turns it into a `cancelled` item.
  if (await ctx.isCancelled?.(job.id)) return true;
  const { urlHash } = entry.value;
  const asRead: Claim = {
    jobId: job.id,
    index,
    item: entry.value,
    versionstamp: entry.versionstamp,
    expiresAt: job.expiresAt,
  };
  const url = await ctx.images.lookup(urlHash);

  const earlier = earlierOutcome(job, url, entry.value.attempts);
  if (earlier) {
    let image = url.image;
    if (earlier.state === "complete" && job.variants?.length) {
      // Stored before (or by another job): it gains this job's variants first.
      image = await ctx.images.keepVariants(urlHash, job.variants);
      if (!image.value) return false; // deleted meanwhile: look again
      await ctx.variants?.(image.value, job.variants);
    }
    const res = await ctx.batcher.commit((w) => {
      ctx.jobs.addFinish(w.check(image, url.failure), asRead, earlier);
    });
    return res.ok;
  }
  const lease = url.lease.value;
  if (lease && lease.until >= Date.now()) {
    // Another job's item is downloading this URL: look again shortly.
    const res = await ctx.batcher.commit((w) =>
      ctx.jobs.addRelease(w, asRead, Date.now() + WAIT_FOR_OTHER_DOWNLOAD_MS)
    );
    return res.ok;
  }

  // Claim the item and the URL together, guarded by everything just read.
  const holder = `${ctx.owner}/${job.id}/${index}`;
  const attempts = entry.value.attempts + 1;
  let claim!: Claim;
  const res = await ctx.batcher.commit((w) => {
    w.check(url.image, url.failure);
    claim = ctx.jobs.addClaim(
      w,
      job.id,
      index,
      entry,
      ctx.owner,
      ctx.leaseMs,
      { attempts },
      job.expiresAt,
    );
    ctx.images.addLease(w, urlHash, url.lease, holder, ctx.leaseMs);
  });
  if (!res.ok) return false;
  claim.versionstamp = res.versionstamp;
  // The leases are kept from here on: waiting for a slot may take a while.
  const heartbeat = keepLeases(ctx, claim, holder);
  let dropped = false;
  try {
    if (job.started === null) {
      await ctx.jobs.markStarted(job);
      job.started = Date.now(); // the pump's copy: later items skip the KV read
    }
    await withSlot(async (release) => {
      // Claimed before the job was cancelled, but not started: not downloaded.
      if (await ctx.isCancelled?.(job.id)) {
        release();
        return cancelClaimed(ctx, claim, attempts - 1, heartbeat);
      }
      return download(ctx, job, claim, url, attempts, heartbeat, release);
    });
  } catch (err) {
    if (!(err instanceof DroppedTask)) throw err;
    dropped = true;
  } finally {
    await heartbeat.stop();
  }
  if (dropped) await handBack(ctx, claim, attempts);
  return true;
}

/** Ends a claimed item of a cancelled job as `cancelled`, without downloading it. */
async function cancelClaimed(
  ctx: ItemContext,
  claim: Claim,
  attempts: number,
  heartbeat: Heartbeat,
): Promise<void> {
  // Later commits check the versionstamps the last renewal wrote.
  await heartbeat.stop();
  await ctx.batcher.commit((w) => {
    ctx.images.addReleaseLease(w, claim.item.urlHash);
    ctx.jobs.addFinish(w, claim, {
      state: "failed",
      reason: "cancelled",
      detail: "the job was cancelled before this URL was downloaded",
      attempts,
    });
  });
}

/** Shutting down: gives the item and the URL back untouched, for the next process. */
async function handBack(ctx: ItemContext, claim: Claim, attempts: number): Promise<void> {
  await ctx.batcher.commit((w) => {
    ctx.images.addReleaseLease(w, claim.item.urlHash);
    ctx.jobs.addRelease(w, claim, Date.now(), { attempts: attempts - 1 });
  });
}

/**
 * The outcome of a download made for another job that this job may take:
 * the URL is stored (and the job did not ask for a refresh, or the origin
 * vouched for it after the job was created: a download or a 304), or its
 * download failed for good after the job was created. `attempts` is what
 * this item itself has made.
 */
function earlierOutcome(job: JobRecord, url: UrlState, attempts: number): Outcome | null {
  const image = url.image.value;
  if (image && !job.refresh) return { state: "complete", attempts };
  if (image && (image.checkedAt ?? image.storedAt) >= job.created) {
    const confirmedOnly = image.storedAt < job.created;
    return { state: "complete", attempts, ...(confirmedOnly ? { revalidated: true } : {}) };
  }
  const failure = url.failure.value;
  // After a retry, only failures newer than the retry count: older ones are what it retries.
  if (failure && failure.at >= (job.retried ?? job.created)) {
    return { state: "failed", reason: failure.reason, detail: failure.detail, attempts };
  }
  return null;
}

async function download(
  ctx: ItemContext,
  job: JobRecord,
  claim: Claim,
  url: UrlState,
  attempts: number,
  heartbeat: Heartbeat,
  releaseSlot: () => void,
): Promise<void> {
  const { urlHash } = claim.item;
  let result: RevalidateResult;
  try {
    const conditional = await conditionalFor(ctx, url);
    result = conditional === null
      ? await ctx.fetcher.attempt(claim.item.url, ctx.signal)
      : await ctx.fetcher.revalidate(claim.item.url, conditional, ctx.signal);
  } finally {
    // Later commits check the versionstamps the last renewal wrote.
    await heartbeat.stop();
    // The rest is disk and KV work: let the next download start.
    releaseSlot();
  }
  try {
    let failed: Failed;
    if (result.ok && result.notModified) return await revalidated(ctx, claim, url, result);
    if (result.ok) {
      // Either failure is retried like any transient one.
      const failure = await makeDurable(result.staged) ??
        await stored(ctx, job, claim, url, result);
      if (failure === null) return;
      failed = failure;
    } else {
      failed = result;
    }
    if (ctx.signal.aborted) return await handBack(ctx, claim, attempts);
    if (failed.transient && attempts <= ctx.retries) {
      const delay = retryDelayMs(attempts, failed, {
        baseMs: ctx.retryBaseMs,
        capMs: Math.max(ctx.retryBaseMs * 16, ctx.retryAfterCapMs),
        retryAfterCapMs: ctx.retryAfterCapMs,
      });
      await ctx.batcher.commit((w) => {
        ctx.images.addReleaseLease(w, urlHash);
        ctx.jobs.addRelease(w, claim, Date.now() + delay, {
          reason: failed.reason,
          detail: failed.detail,
        });
      });
      return;
    }
    const failure = { reason: failed.reason, detail: failed.detail, attempts };
    await ctx.batcher.commit((w) => {
      ctx.images.addFailure(w, urlHash, failure);
      ctx.jobs.addFinish(w, claim, { state: "failed", ...failure });
    });
  } catch (err) {
    // Storage or KV trouble: the claim's lease runs out and the sweep retries it.
    console.error(`worker: ${claim.item.url}: ${(err as Error).message}`);
  }
}

/** Commits staged bytes; a failure (disk full, write error) becomes a `storage_error`. */
async function makeDurable(staged: StagedBlob): Promise<Failed | null> {
  try {
    await staged.commit();
    return null;
  } catch (err) {
    await staged.discard().catch(() => {});
    const detail = `cannot store the bytes: ${(err as Error).message}`;
    return { ok: false, reason: "storage_error", detail, transient: true };
  }
}

/**
 * Indexes durable bytes and completes the item (in one commit unless the
 * job wants variants). A failure when the bytes were collected before they
 * could be indexed (a delete of the last other URL holding them raced with
 * this download).
 */
async function stored(
  ctx: ItemContext,
  job: JobRecord,
  claim: Claim,
  url: UrlState,
  result: Extract<AttemptResult, { ok: true }>,
): Promise<Failed | null> {
  const { staged, info, caching } = result;
  const now = Date.now();
  const record = {
    ...freshImage(claim.item.url, staged, info, now),
    caching,
    jobId: claim.jobId,
    origin: "download" as const,
    ...(job.variants?.length || url.image.value?.variants
      ? { variants: mergeVariants(url.image.value?.variants, job.variants ?? []) }
      : {}),
  };
  const outcome: Outcome = { state: "complete", attempts: claim.item.attempts };
  if (!job.variants?.length) return await index(ctx, claim, url, record, outcome);
  // With variants to compute: the index first (the variants' source must be
  // referenced), then the variants, then the item, so that a complete item
  // has them. A crash in between completes the item as already stored,
  // which computes them again (cached).
  const failed = await index(ctx, claim, url, record, null);
  if (failed) return failed;
  const heartbeat = keepLeases(ctx, claim, `${ctx.owner}/${claim.jobId}/${claim.index}`);
  try {
    await ctx.variants?.(record, job.variants);
  } finally {
    await heartbeat.stop();
  }
  await ctx.jobs.finish(claim, outcome);
  return null;
}

/**
 * Writes the index entry, with its reference counts, and completes the
 * item in the same commit when `outcome` is given. A failure when the bytes
 * were collected before they could be indexed.
 */
async function index(
  ctx: ItemContext,
  claim: Claim,
  url: UrlState,
  record: Omit<ImageRecord, "seq">,
  outcome: Outcome | null,
): Promise<Failed | null> {
  try {
    // A first try without reading the collection mark; `put` reads it.
    const plan = await ctx.images.planRefs(url.image.value, record.sha256, { optimistic: true });
    let freed: string | null = null;
    const res = await ctx.batcher.commit((w) => {
      freed = ctx.images.addPut(w, record, claim.item.urlHash, url.image, plan).freed;
      if (outcome) ctx.jobs.addFinish(w, claim, outcome);
    });
    if (res.ok) {
      ctx.images.forgetRecent(record.url);
      ctx.images.freed(freed);
      return null;
    }
    // The index entry changed meanwhile (another job refreshed it) or the
    // claim was lost: write each part on its own; both are still true.
    await ctx.images.put(record, claim.item.urlHash);
  } catch (err) {
    if (!(err instanceof BlobGone)) throw err;
    return { ok: false, reason: "storage_error", detail: err.message, transient: true };
  }
  if (outcome) await ctx.jobs.finish(claim, outcome);
  return null;
}

interface Heartbeat {
  /** Stops renewing; resolves once the last renewal has landed. Idempotent. */
  stop(): Promise<unknown>;
}

/**
 * Renews the item's and the URL's leases while the item waits for a slot
 * and downloads, one renewal at a time, so that a later commit checks the
 * latest versionstamp.
 */
function keepLeases(ctx: ItemContext, claim: Claim, holder: string): Heartbeat {
  let last: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    last = last.then(() =>
      Promise.all([
        ctx.jobs.renew(claim, ctx.leaseMs),
        ctx.images.renewLease(claim.item.urlHash, holder, ctx.leaseMs),
      ])
    ).catch(() => {});
  }, Math.max(250, Math.floor(ctx.leaseMs / 3)));
  return {
    stop() {
      clearInterval(timer);
      return last;
    },
  };
}

import type { Fetcher } from "../fetch/fetcher.ts";
import { retryDelayMs } from "../fetch/retry.ts";
import type { ImagesRepo } from "../store/images_repo.ts";
import type { Claim, JobsRepo } from "../store/jobs_repo.ts";
import type { JobRecord } from "../store/records.ts";

/** How soon to look again at a URL another worker is downloading. */
const WAIT_FOR_OTHER_DOWNLOAD_MS = 200;

export interface ItemContext {
  jobs: JobsRepo;
  images: ImagesRepo;
  fetcher: Fetcher;
  owner: string;
  leaseMs: number;
  retries: number;
  retryBaseMs: number;
  retryAfterCapMs: number;
  /** Aborted on shutdown: the attempt stops and the item goes back to pending. */
  signal: AbortSignal;
}

/**
 * Takes one item of a job through one step: claim it, reuse a stored or
 * failed download of the same URL, or download it once under a URL lease.
 * Every outcome is written to KV; losing a claim midway is harmless because
 * whoever holds it now writes the outcome instead.
 */
export async function processItem(ctx: ItemContext, job: JobRecord, index: number): Promise<void> {
  const claim = await ctx.jobs.claim(job.id, index, ctx.owner, ctx.leaseMs);
  if (!claim) return;
  if (job.started === null) {
    await ctx.jobs.markStarted(job);
    job.started = Date.now(); // the pump's copy: later items skip the KV read
  }
  const { urlHash, url } = claim.item;
  // The URL lease belongs to this claim, not to the process: another job's
  // item in this same worker must wait for the download too.
  const holder = `${ctx.owner}/${job.id}/${index}`;

  if (await settleFromEarlierDownload(ctx, job, claim)) return;
  if (!await ctx.images.acquireLease(urlHash, holder, ctx.leaseMs)) {
    await ctx.jobs.release(claim, Date.now() + WAIT_FOR_OTHER_DOWNLOAD_MS);
    return;
  }
  // Look again now that we hold the lease: the previous holder may have
  // finished between the first look and taking the lease.
  if (await settleFromEarlierDownload(ctx, job, claim)) {
    await ctx.images.releaseLease(urlHash, holder);
    return;
  }

  const attempts = claim.item.attempts + 1;
  if (!await ctx.jobs.renew(claim, ctx.leaseMs, { attempts })) {
    await ctx.images.releaseLease(urlHash, holder);
    return;
  }
  const heartbeat = keepLeases(ctx, claim, holder);
  try {
    const result = await ctx.fetcher.attempt(url, ctx.signal);
    await heartbeat.stop();
    if (result.ok) {
      try {
        await result.staged.commit();
        await ctx.images.put({
          url,
          sha256: result.staged.sha256,
          bytes: result.staged.bytes,
          format: result.info.format,
          contentType: result.info.contentType,
          width: result.info.width,
          height: result.info.height,
          storedAt: Date.now(),
        }, urlHash);
      } catch (err) {
        await result.staged.discard();
        throw err;
      }
      return await finish(ctx, claim, { state: "complete", attempts });
    }
    if (ctx.signal.aborted) {
      await ctx.images.releaseLease(urlHash, holder);
      await ctx.jobs.release(claim, Date.now(), { attempts: attempts - 1 });
      return;
    }
    if (result.transient && attempts <= ctx.retries) {
      await ctx.images.releaseLease(urlHash, holder);
      const delay = retryDelayMs(attempts, result, {
        baseMs: ctx.retryBaseMs,
        capMs: Math.max(ctx.retryBaseMs * 16, ctx.retryAfterCapMs),
        retryAfterCapMs: ctx.retryAfterCapMs,
      });
      await ctx.jobs.release(claim, Date.now() + delay, {
        attempts,
        reason: result.reason,
        detail: result.detail,
      });
      return;
    }
    await ctx.images.recordFailure(urlHash, holder, {
      reason: result.reason,
      detail: result.detail,
      attempts,
    });
    return await finish(ctx, claim, {
      state: "failed",
      reason: result.reason,
      detail: result.detail,
      attempts,
    });
  } catch (err) {
    // Storage or KV trouble: the claim's lease runs out and the sweep retries it.
    console.error(`worker: ${url}: ${(err as Error).message}`);
    await ctx.images.releaseLease(urlHash, holder).catch(() => {});
  } finally {
    await heartbeat.stop();
  }
}

/**
 * Completes or fails the item from a download made for another job: the URL
 * is stored (and this job did not ask for a refresh, or it was stored after
 * the job was created), or its download failed after the job was created.
 */
async function settleFromEarlierDownload(
  ctx: ItemContext,
  job: JobRecord,
  claim: Claim,
): Promise<boolean> {
  const { urlHash } = claim.item;
  const image = await ctx.images.get(urlHash);
  if (image && (!job.refresh || image.storedAt >= job.created)) {
    await finish(ctx, claim, { state: "complete", attempts: claim.item.attempts });
    return true;
  }
  const failure = await ctx.images.lastFailure(urlHash);
  if (failure && failure.at >= job.created) {
    await finish(ctx, claim, {
      state: "failed",
      reason: failure.reason,
      detail: failure.detail,
      attempts: claim.item.attempts,
    });
    return true;
  }
  return false;
}

/**
 * Renews the item's and the URL's leases while a download runs, one renewal
 * at a time, so that a later commit checks the latest versionstamp.
 */
function keepLeases(
  ctx: ItemContext,
  claim: Claim,
  holder: string,
): { stop(): Promise<unknown> } {
  let last: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    last = last.then(() =>
      Promise.all([
        ctx.jobs.renew(claim, ctx.leaseMs),
        ctx.images.acquireLease(claim.item.urlHash, holder, ctx.leaseMs),
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

async function finish(
  ctx: ItemContext,
  claim: Claim,
  outcome: Parameters<JobsRepo["finish"]>[1],
): Promise<void> {
  if (await ctx.jobs.finish(claim, outcome)) await ctx.jobs.finalizeIfDone(claim.jobId);
}

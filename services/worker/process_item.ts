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
  if (job.started === null) await ctx.jobs.markStarted(job);
  const { urlHash, url } = claim.item;

  const image = await ctx.images.get(urlHash);
  if (image && (!job.refresh || image.storedAt >= job.created)) {
    return finish(ctx, claim, { state: "complete", attempts: claim.item.attempts });
  }
  const failure = await ctx.images.lastFailure(urlHash);
  if (failure && failure.at >= job.created) {
    return finish(ctx, claim, {
      state: "failed",
      reason: failure.reason,
      detail: failure.detail,
      attempts: claim.item.attempts,
    });
  }
  if (!await ctx.images.acquireLease(urlHash, ctx.owner, ctx.leaseMs)) {
    await ctx.jobs.release(claim, Date.now() + WAIT_FOR_OTHER_DOWNLOAD_MS);
    return;
  }

  const attempts = claim.item.attempts + 1;
  if (!await ctx.jobs.renew(claim, ctx.leaseMs, { attempts })) {
    await ctx.images.releaseLease(urlHash, ctx.owner);
    return;
  }
  const heartbeat = keepLeases(ctx, claim);
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
      await ctx.images.releaseLease(urlHash, ctx.owner);
      await ctx.jobs.release(claim, Date.now(), { attempts: attempts - 1 });
      return;
    }
    if (result.transient && attempts <= ctx.retries) {
      await ctx.images.releaseLease(urlHash, ctx.owner);
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
    await ctx.images.recordFailure(urlHash, ctx.owner, {
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
    await ctx.images.releaseLease(urlHash, ctx.owner).catch(() => {});
  } finally {
    await heartbeat.stop();
  }
}

/**
 * Renews the item's and the URL's leases while a download runs, one renewal
 * at a time, so that a later commit checks the latest versionstamp.
 */
function keepLeases(ctx: ItemContext, claim: Claim): { stop(): Promise<unknown> } {
  let last: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    last = last.then(() =>
      Promise.all([
        ctx.jobs.renew(claim, ctx.leaseMs),
        ctx.images.acquireLease(claim.item.urlHash, ctx.owner, ctx.leaseMs),
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

import { type Conditional, conditionalFrom, mergeCaching } from "../fetch/caching.ts";
import type { NotModified } from "../fetch/fetcher.ts";
import type { UrlState } from "../store/images_repo.ts";
import type { Claim, Outcome } from "../store/jobs_repo.ts";
import type { ImageRecord } from "../store/records.ts";
import type { ItemContext } from "./process_item.ts";

/**
 * The validators a refresh of this URL sends, or null for a plain download:
 * nothing stored, the origin gave no validators, or the stored blob is gone
 * or the wrong size (a 304 would then keep an entry that serves nothing).
 */
export async function conditionalFor(
  ctx: ItemContext,
  url: UrlState,
): Promise<Conditional | null> {
  const image = url.image.value;
  if (!image) return null;
  const conditional = conditionalFrom(image.caching, image.url);
  if (conditional === null) return null;
  const blob = await ctx.blobs.stat(image.sha256).catch(() => null);
  return blob?.bytes === image.bytes ? conditional : null;
}

/**
 * The origin confirmed the stored bytes (304): the entry keeps its bytes
 * and `storedAt`, gets a new `checkedAt` and the caching headers the 304
 * carried, and the item completes as revalidated, in one commit.
 */
export async function revalidated(
  ctx: ItemContext,
  claim: Claim,
  url: UrlState,
  result: NotModified,
): Promise<void> {
  // A conditional request is only made for a stored image (conditionalFor).
  const image = url.image.value!;
  const checkedAt = Date.now();
  const update = (current: ImageRecord) => {
    const { seq: _, ...rest } = current;
    return { ...rest, checkedAt, caching: mergeCaching(current.caching ?? {}, result.caching) };
  };
  const outcome: Outcome = { state: "complete", attempts: claim.item.attempts, revalidated: true };
  const res = await ctx.batcher.commit((w) => {
    ctx.images.addPut(w, update(image), claim.item.urlHash, url.image);
    ctx.jobs.addFinish(w, claim, outcome);
  });
  if (res.ok) {
    ctx.images.forgetRecent(image.url);
  } else {
    // The entry changed meanwhile (another job refreshed it) or the claim
    // was lost: write each part on its own.
    await ctx.images.confirm(claim.item.urlHash, image.sha256, update);
    await ctx.jobs.finish(claim, outcome);
  }
}

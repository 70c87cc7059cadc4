import type { BlobCollector } from "../blobs/collector.ts";
import { urlHash } from "../store/ids.ts";
import type { ImagesRepo } from "../store/images_repo.ts";

/**
 * Removes a URL's image from the index and, when no other entry refers to
 * its bytes, deletes them and their derivatives before returning (so a
 * caller that sees the answer sees the files gone). False when nothing was
 * stored under the URL. A collection that fails here is left queued and
 * the sweep finishes it; the removal itself stands.
 */
export async function removeImage(
  images: ImagesRepo,
  collector: BlobCollector,
  url: string,
): Promise<boolean> {
  const removed = await images.remove(urlHash(url));
  if (!removed) return false;
  if (removed.freed) {
    await collector.collect(removed.freed).catch((err) =>
      console.error(`collector: ${removed.freed}: ${(err as Error).message}`)
    );
  }
  return true;
}

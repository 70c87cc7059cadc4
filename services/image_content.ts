import type { BlobStore, ByteRange } from "./blobs/blob_store.ts";
import type { BlobCache } from "./blobs/blob_cache.ts";
import type { ImageRecord } from "./store/records.ts";

/** The bytes of a stored image: small ones whole (often from memory), large ones as a stream. */
export type ImageBody = Uint8Array | ReadableStream<Uint8Array>;

/**
 * Reads stored images for serving. Small blobs are read whole and kept in a
 * bounded in-memory cache (safe: blobs never change under their hash); large
 * ones are streamed from storage and never held whole in memory.
 */
export class ImageContent {
  constructor(private readonly blobs: BlobStore, private readonly cache: BlobCache) {}

  /** The image's bytes, or the range of them; null when the blob is missing. */
  async open(
    record: Pick<ImageRecord, "sha256" | "bytes">,
    range?: ByteRange,
  ): Promise<ImageBody | null> {
    if (!this.cache.accepts(record.bytes)) return await this.blobs.get(record.sha256, range);
    let whole = this.cache.get(record.sha256);
    if (!whole) {
      const stream = await this.blobs.get(record.sha256);
      if (!stream) return null;
      whole = new Uint8Array(await new Response(stream).arrayBuffer());
      // A blob of the wrong size is damaged (fsck reports it); never cache it.
      if (whole.byteLength === record.bytes) this.cache.set(record.sha256, whole);
    }
    return range ? whole.subarray(range.start, range.end + 1) : whole;
  }
}

/**
 * Storing image bytes a client sends (a form upload or a PUT) rather than
 * downloads: the same checks as a download, applied while the body streams
 * into the blob store, then the index entry under the client's key. Free of
 * HTTP: refusals are typed errors the routes turn into problem answers.
 */
import type { BlobStore, StagedBlob } from "../blobs/blob_store.ts";
import { type CheckReason, ImageBodyCheck, type ImageLimits } from "../image/body_check.ts";
import type { ImageInfo } from "../image/types.ts";
import { freshImage } from "../store/fresh_image.ts";
import { urlHash } from "../store/ids.ts";
import type { ImagesRepo } from "../store/images_repo.ts";
import type { ImageRecord } from "../store/records.ts";

/** Bytes the image checks refuse (too large, not an image, unsupported, too many pixels). */
export class ImageRefused extends Error {
  constructor(readonly reason: CheckReason, detail: string) {
    super(detail);
  }
}

/** The request does not carry an upload as expected (no image, an empty one, a bad key...). */
export class UploadInvalid extends Error {}

/** The request body broke off (the client went away) before it ended. */
export class BodyReadError extends Error {}

/** Staged bytes that passed the checks, not yet durable nor indexed. */
export interface CheckedUpload {
  staged: StagedBlob;
  info: ImageInfo;
}

export interface StoredUpload {
  record: ImageRecord;
  /** False when an image was already stored under the key (and was replaced). */
  created: boolean;
}

export class ImageUploads {
  constructor(
    private readonly blobs: BlobStore,
    private readonly images: ImagesRepo,
    readonly limits: ImageLimits,
  ) {}

  /**
   * Streams `body` into temporary storage through the image checks. Rejects
   * with ImageRefused, UploadInvalid (empty), the body's own error or a
   * storage error, and then leaves nothing behind.
   */
  async stage(body: AsyncIterable<Uint8Array>): Promise<CheckedUpload> {
    const check = new ImageBodyCheck(this.limits, (r, d) => new ImageRefused(r, d));
    async function* checked(): AsyncGenerator<Uint8Array> {
      for await (const chunk of body) {
        check.add(chunk);
        yield chunk;
      }
      if (check.bytes === 0) throw new UploadInvalid("The image is empty.");
      check.finish();
    }
    const staged = await this.blobs.stage(checked());
    return { staged, info: check.info! };
  }

  /** Makes the staged bytes durable and stores them under `key` (checked by the caller). */
  async store(key: string, { staged, info }: CheckedUpload): Promise<StoredUpload> {
    try {
      await staged.commit();
    } catch (err) {
      await staged.discard().catch(() => {});
      throw err;
    }
    const hash = urlHash(key);
    // Read apart from the write: two uploads racing for a new key may both
    // say "created". Named variants asked for the key stay asked for (as on
    // a refreshed download): they are computed from the new bytes on request.
    const existing = await this.images.get(hash);
    const variants = existing?.variants;
    const record = await this.images.put({
      ...freshImage(key, staged, info),
      origin: "upload",
      ...(variants ? { variants } : {}),
    }, hash);
    const created = existing === null;
    return { record, created };
  }
}

/** A request body's chunks; a body that breaks off becomes a BodyReadError. */
export async function* readBody(
  body: ReadableStream<Uint8Array> | null,
): AsyncGenerator<Uint8Array> {
  if (!body) return;
  const reader = body.getReader();
  let ended = false;
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (err) {
        throw new BodyReadError(`The request body broke off: ${(err as Error)?.message ?? err}`);
      }
      if (next.done) {
        ended = true;
        return;
      }
      yield next.value;
    }
  } finally {
    // Refused early: read no more of it.
    if (!ended) reader.cancel().catch(() => {});
  }
}

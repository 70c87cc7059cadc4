import type { ImageInfo } from "../image/types.ts";
import type { ImageRecord } from "./records.ts";

/**
 * The index entry of bytes just stored under `url`, downloaded or uploaded
 * (callers add what only they know: validators, job, origin).
 */
export function freshImage(
  url: string,
  blob: { sha256: string; bytes: number },
  info: ImageInfo,
  now = Date.now(),
): Omit<ImageRecord, "seq"> {
  return {
    url,
    sha256: blob.sha256,
    bytes: blob.bytes,
    format: info.format,
    contentType: info.contentType,
    width: info.width,
    height: info.height,
    storedAt: now,
    checkedAt: now,
  };
}

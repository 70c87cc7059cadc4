/**
 * Byte readers and result builders shared by the per-format header parsers.
 *
 * Readers take the offset explicitly and never allocate, because sniffing runs on every
 * chunk of every download.
 */
import type { ImageFormat, SniffResult } from "../types.ts";

/** Media type reported for each accepted format. */
export const CONTENT_TYPES: Readonly<Record<ImageFormat, string>> = {
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  bmp: "image/bmp",
  tiff: "image/tiff",
  // The IANA-registered name; browsers accept it as well as the older image/x-icon.
  ico: "image/vnd.microsoft.icon",
};

/** Human-readable format names used in rejection details. */
export const FORMAT_NAMES: Readonly<Record<ImageFormat, string>> = {
  jpeg: "JPEG",
  png: "PNG",
  gif: "GIF",
  webp: "WebP",
  avif: "AVIF",
  bmp: "BMP",
  tiff: "TIFF",
  ico: "ICO",
};

/** Big-endian unsigned 16-bit integer at `at`. */
export function u16be(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

/** Little-endian unsigned 16-bit integer at `at`. */
export function u16le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

/** Little-endian unsigned 24-bit integer at `at`. */
export function u24le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
}

/** Big-endian unsigned 32-bit integer at `at`. */
export function u32be(b: Uint8Array, at: number): number {
  // `>>> 0` keeps values above 2^31 positive.
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** Little-endian unsigned 32-bit integer at `at`. */
export function u32le(b: Uint8Array, at: number): number {
  return ((b[at + 3] << 24) | (b[at + 2] << 16) | (b[at + 1] << 8) | b[at]) >>> 0;
}

/** Little-endian signed 32-bit integer at `at`. */
export function i32le(b: Uint8Array, at: number): number {
  return (b[at + 3] << 24) | (b[at + 2] << 16) | (b[at + 1] << 8) | b[at];
}

/** Four bytes at `at` as a Latin-1 string, e.g. a chunk or box type. */
export function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);
}

/** The verdict for a header that was parsed: an image, or a rejection for silly sizes. */
export function dimensions(format: ImageFormat, width: number, height: number): SniffResult {
  const name = FORMAT_NAMES[format];
  if (!Number.isSafeInteger(width) || width <= 0) {
    return notAnImage(`${name} header declares an invalid width (${width})`);
  }
  if (!Number.isSafeInteger(height) || height <= 0) {
    return notAnImage(`${name} header declares an invalid height (${height})`);
  }
  return {
    kind: "image",
    info: { format, contentType: CONTENT_TYPES[format], width, height },
  };
}

/** A rejection for content that is not an image we can use. */
export function notAnImage(detail: string): SniffResult {
  return { kind: "rejected", reason: "not_an_image", detail };
}

/**
 * The verdict when the bytes end before the part of the header we need.
 *
 * While the download goes on we simply ask for more; once the caller says this is all it will
 * give us, the same situation means a broken or unusable file.
 */
export function truncated(
  format: ImageFormat,
  head: Uint8Array,
  isComplete: boolean,
  missing: string,
): SniffResult {
  if (!isComplete) return { kind: "need_more" };
  return notAnImage(
    `${FORMAT_NAMES[format]} data ends before ${missing} (${head.length} bytes examined)`,
  );
}

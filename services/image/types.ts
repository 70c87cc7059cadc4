/** Raster formats the service accepts, identified from the bytes only. */
export const IMAGE_FORMATS = ["jpeg", "png", "gif", "webp", "avif", "bmp", "tiff", "ico"] as const;
export type ImageFormat = typeof IMAGE_FORMATS[number];

/** What the header of an image says about it. */
export interface ImageInfo {
  format: ImageFormat;
  /** The media type served for this format, e.g. `image/png`. */
  contentType: string;
  width: number;
  height: number;
}

/** Outcome of looking at the first bytes of a download. */
export type SniffResult =
  | { kind: "image"; info: ImageInfo }
  | { kind: "need_more" }
  | { kind: "rejected"; reason: "not_an_image" | "unsupported_format"; detail: string };

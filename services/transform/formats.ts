import type { ImageFormat } from "../image/types.ts";

/** Formats a transform can write. GIF is not one: animations become WebP. */
export const OUTPUT_FORMATS = ["webp", "avif", "jpeg", "png"] as const;
export type OutputFormat = typeof OUTPUT_FORMATS[number];

/** How a source is resized into the `w`x`h` box. */
export const FITS = ["cover", "contain", "inside"] as const;
export type Fit = typeof FITS[number];

/** Largest output side, whatever the source or the limit on pixels. */
export const MAX_SIDE = 8192;

/**
 * Default quality of the lossy formats: the encoders' own defaults, which
 * look alike at these values. PNG is lossless and takes none.
 */
export const DEFAULT_QUALITY: Record<OutputFormat, number | null> = {
  webp: 80,
  avif: 50,
  jpeg: 80,
  png: null,
};

/** Only WebP output keeps the frames of an animated source (AVIF output from libvips is a still). */
export const ANIMATABLE: ReadonlySet<OutputFormat> = new Set(["webp"]);

/** Sources libvips can decode here: the bundled build has no BMP or ICO loader. */
export const DECODABLE: ReadonlySet<ImageFormat> = new Set([
  "jpeg",
  "png",
  "gif",
  "webp",
  "avif",
  "tiff",
]);

/** Sources whose frames are read (still images of these formats have one). */
export const MAY_ANIMATE: ReadonlySet<ImageFormat> = new Set(["gif", "webp"]);

/**
 * The output format when none is asked for: the source's own when it can be
 * written, WebP for GIF (keeps frames and transparency), PNG otherwise.
 */
export function defaultFormatFor(source: ImageFormat): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(source)) return source as OutputFormat;
  return source === "gif" ? "webp" : "png";
}

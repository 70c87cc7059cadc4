/**
 * The libvips pipeline: decode (every frame of a GIF or WebP), apply the
 * EXIF orientation, resize, encode, and identify the result the way stored
 * images are identified. Free of HTTP and storage.
 */
import { sniffImage } from "../image/sniff.ts";
import type { ImageFormat, ImageInfo } from "../image/types.ts";
import { invalidParameters, TransformError } from "./errors.ts";
import { ANIMATABLE, DECODABLE, MAX_SIDE, MAY_ANIMATE } from "./formats.ts";
import type { TransformParams } from "./params.ts";
import type { Sharp } from "./sharp_loader.ts";

export interface EngineOutput extends ImageInfo {
  bytes: Uint8Array;
}

type ResizeOptions = NonNullable<Parameters<ReturnType<Sharp>["resize"]>[0]>;

const TRANSPARENT = { r: 0, g: 0, b: 0, alpha: 0 };
const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };

/**
 * The resize for a frame of `sw`x`sh` (after orientation). `inside` never
 * enlarges and with a side missing fits within the 8,192 px cap; `cover` and
 * `contain` give exactly the size asked (enlarging if need be), a missing
 * side following the aspect ratio. Throws "invalid" when that size is over
 * the caps.
 */
export function resizeFor(
  p: TransformParams,
  sw: number,
  sh: number,
  maxPixels: number,
): ResizeOptions | null {
  if (p.fit === "inside") {
    const width = Math.min(p.w ?? MAX_SIDE, MAX_SIDE);
    const height = Math.min(p.h ?? MAX_SIDE, MAX_SIDE);
    if (sw <= width && sh <= height) return null;
    return { width, height, fit: "inside", withoutEnlargement: true };
  }
  const width = p.w ?? Math.max(1, Math.round((sw * p.h!) / sh));
  const height = p.h ?? Math.max(1, Math.round((sh * p.w!) / sw));
  const derived = p.w === null ? "h" : "w";
  if (width > MAX_SIDE || height > MAX_SIDE) {
    throw invalidParameters([{
      field: derived,
      message: `gives a ${width}x${height} output with this image's aspect ratio, ` +
        `over the ${MAX_SIDE} px cap per side`,
    }]);
  }
  if (width * height > maxPixels) {
    throw invalidParameters([{
      field: derived,
      message: `gives a ${width}x${height} output, over the limit of ${maxPixels} pixels`,
    }]);
  }
  const background = p.format === "jpeg" ? WHITE : TRANSPARENT;
  return { width, height, fit: p.fit, background };
}

const cannot = (detail: string) => new TransformError("cannot", detail);

/** Why libvips refused, in the caller's terms. */
function refusal(err: unknown): TransformError {
  const message = (err as Error).message ?? String(err);
  if (/pixel limit/i.test(message)) {
    return cannot(
      "The source has more pixels (all frames counted) than MAX_IMAGE_PIXELS allows to decode.",
    );
  }
  return cannot(`The source could not be decoded: ${message.split("\n")[0]}`);
}

/** Transforms `input` (a stored image of `sourceFormat`) as `p` says. */
export async function runTransform(
  sharp: Sharp,
  input: Uint8Array,
  sourceFormat: ImageFormat,
  p: TransformParams,
  maxPixels: number,
): Promise<EngineOutput> {
  if (!DECODABLE.has(sourceFormat)) {
    throw cannot(
      `Images stored as ${sourceFormat} cannot be transformed (no decoder for it here); ` +
        "ask without transform parameters for the original.",
    );
  }
  const image = sharp(input, {
    animated: MAY_ANIMATE.has(sourceFormat),
    limitInputPixels: maxPixels,
  });
  let meta;
  try {
    meta = await image.metadata();
  } catch (err) {
    throw refusal(err);
  }
  const pages = meta.pages ?? 1;
  if (pages > 1 && !ANIMATABLE.has(p.format)) {
    throw cannot(
      `The source is animated (${pages} frames) and ${p.format} cannot hold frames; ` +
        "ask for format=webp to keep them.",
    );
  }
  const frameHeight = meta.pageHeight ?? meta.height;
  const turned = (meta.orientation ?? 1) >= 5;
  const resize = resizeFor(
    p,
    turned ? frameHeight : meta.width,
    turned ? meta.width : frameHeight,
    maxPixels,
  );

  let pipeline = image.autoOrient();
  if (resize) pipeline = pipeline.resize(resize);
  const quality = p.quality ?? undefined;
  switch (p.format) {
    case "jpeg":
      // JPEG has no alpha: transparent pixels would turn black.
      pipeline = pipeline.flatten({ background: WHITE }).jpeg({ quality });
      break;
    case "webp":
      pipeline = pipeline.webp({ quality });
      break;
    case "avif":
      pipeline = pipeline.avif({ quality });
      break;
    case "png":
      pipeline = pipeline.png();
      break;
  }
  // Stripped by default (privacy: camera, place); the orientation is
  // already applied either way, so a kept EXIF says 1.
  if (p.metadata === "keep") pipeline = pipeline.keepMetadata();

  let data: Uint8Array;
  try {
    const buffer = await pipeline.toBuffer();
    data = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (err) {
    throw refusal(err);
  }
  const sniffed = sniffImage(data, true);
  if (sniffed.kind !== "image") {
    throw new Error(`the ${p.format} encoder wrote bytes that are not an image (${sniffed.kind})`);
  }
  return { ...sniffed.info, bytes: data };
}

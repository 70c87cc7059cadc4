/**
 * The contract of transformed answers, shared by the routes that deliver
 * image bytes (`/images/content`, `/blobs/{sha256}`).
 */
import { z } from "@hono/zod-openapi";
import { FITS, MAX_SIDE, OUTPUT_FORMATS } from "../services/transform/formats.ts";
import { VARIANT_NAME } from "../services/transform/params.ts";
import { problem } from "./problem.ts";

/**
 * The transform parameters (issue 9). Read by routes/transformed.ts itself,
 * which gives the field errors; these schemas document the contract.
 */
export const transformQuery = {
  w: z.coerce.number().int().min(1).max(MAX_SIDE).optional().openapi({
    description: `Width in pixels, 1 to ${MAX_SIDE}. Any transform parameter makes the answer a ` +
      "transformed copy, cached under the image's hash and the parameters.",
    example: 256,
  }),
  h: z.coerce.number().int().min(1).max(MAX_SIDE).optional().openapi({
    description: `Height in pixels, 1 to ${MAX_SIDE}. \`w\` × \`h\` is at most MAX_IMAGE_PIXELS.`,
  }),
  fit: z.enum(FITS).optional().openapi({
    description: "Needs `w` or `h`. `inside` (default): within the box, aspect kept, never " +
      "enlarged. `cover`: exactly the box, cropped to the centre, enlarged if need be. " +
      "`contain`: exactly the box, letterboxed (transparent, white for JPEG), enlarged if need " +
      "be. With one side given, `cover` and `contain` give exactly that side.",
  }),
  format: z.enum([...OUTPUT_FORMATS, "auto"]).optional().openapi({
    description: "Output format. Default: the source's (GIF becomes WebP, BMP/TIFF/ICO PNG). " +
      "`auto`: AVIF if `Accept` names `image/avif`, else WebP if it names `image/webp`, else " +
      "the source's when JPEG or PNG, else PNG; GIF and WebP sources never get AVIF (frames); " +
      "answers `Vary: Accept`. An animated source keeps its frames only as WebP.",
  }),
  quality: z.coerce.number().int().min(1).max(100).optional().openapi({
    description: "1 to 100, for JPEG, WebP and AVIF (defaults 80, 80, 50); refused with " +
      "`format=png`, ignored when `png` is chosen otherwise.",
  }),
  metadata: z.enum(["keep", "strip"]).optional().openapi({
    description: "`strip` (default) drops EXIF, XMP and ICC; `keep` keeps them. The EXIF " +
      "orientation is applied either way.",
  }),
  variant: z.string().regex(VARIANT_NAME).optional().openapi({
    description: "A named variant the image was submitted with; alone (no other transform " +
      "parameter).",
    example: "thumb",
  }),
};

/** The answers only transforms give. */
export const transformResponses = {
  422: problem(
    "The transform cannot apply to this image: an animated image asked for in a format " +
      "without frames, a source format that cannot be decoded here (BMP, ICO), or a damaged " +
      "image.",
  ),
  501: problem("Transforms are unavailable on this instance (sharp could not be loaded)."),
  503: {
    ...problem(
      "Every transform slot is busy and the wait queue is full: retry after " +
        "`Retry-After` seconds.",
    ),
    headers: z.object({ "Retry-After": z.string().openapi({ example: "1" }) }),
  },
};

/** Headers transformed answers add. */
export const transformHeaders = {
  Vary: z.string().optional().openapi({
    example: "Accept",
    description: "`Accept` on answers to `format=auto`.",
  }),
};

export const TRANSFORM_400 = "or a transform parameter is invalid: a bad value, an unknown " +
  "parameter next to transform ones, `fit` without `w` or `h`, `quality` with `format=png`, " +
  "`variant` with other transform parameters, or an output over 8,192 px a side or " +
  "MAX_IMAGE_PIXELS (also when the aspect ratio makes it so)";

import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { MAX_LIST_BODY_BYTES } from "../services/intake/body_reader.ts";
import { MAX_IDEMPOTENCY_KEY } from "../services/intake/intake.ts";
import { FITS, MAX_SIDE, OUTPUT_FORMATS } from "../services/transform/formats.ts";
import { VARIANT_NAME } from "../services/transform/params.ts";
import { problem, ProblemError } from "./problem.ts";
import {
  CallbackUrl,
  Cursor,
  Image,
  ImagePage,
  Job,
  Limit,
  SubmitBody,
  UrlQuery,
} from "./schemas.ts";

/** Largest accepted JSON body (text, CSV and multipart lists may be larger). */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;

const limitJson = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ProblemError(413, `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
  },
});

/**
 * JSON is read whole, so it keeps the small limit. List bodies are read as
 * a stream: a declared length over the limit is refused at once, and the
 * reader stops any body that grows past it.
 */
const limitBody: MiddlewareHandler = async (c, next) => {
  const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/json") return await limitJson(c, next);
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_LIST_BODY_BYTES) {
    throw new ProblemError(413, `The request body is larger than ${MAX_LIST_BODY_BYTES} bytes.`);
  }
  await next();
};

const listText = z.string().openapi({
  example: "https://images.example.com/cats/42.jpg\nhttps://cdn.example.org/a.png\n",
});

/**
 * Documented as a plain schema: a Zod schema here would make the framework
 * read and buffer the whole form before the handler runs; the handler
 * streams it instead.
 */
const formSchema = {
  type: "object" as const,
  required: ["file"],
  properties: {
    file: {
      type: "string" as const,
      format: "binary",
      description: "The list: CSV or plain text, judged by the part's content type " +
        "(`text/csv`, `text/plain`), else its file name (`.csv`, `.txt`).",
    },
    refresh: { type: "string" as const, enum: ["true", "false"] },
    callback_url: { type: "string" as const, description: "As `callback_url` in JSON." },
  },
};

/** Read by the handler itself (a header schema would only see lowercase names). */
const idempotencyKeyParameter = {
  name: "Idempotency-Key",
  in: "header" as const,
  required: false,
  description: "Any string of 1 to 255 characters (IETF httpapi idempotency-key draft). The " +
    "same key with the same request answers the job it made (`202`, same id, no second job); " +
    "with a different request, `422`. Keys are kept 24 hours.",
  schema: { type: "string" as const, minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY },
};

export const submitImages = createRoute({
  method: "post",
  path: "/images",
  tags: ["Images"],
  summary: "Submit image URLs for download",
  description: "Records a job and answers at once; the images are downloaded in the background. " +
    "JSON takes `urls` (or `source_url`), an optional `refresh` and `callback_url`; 1 to " +
    "10,000 URLs, all valid, body up to 2 MiB. A text/plain body is one URL per line; a " +
    "text/csv body takes the column named `url` or `source_url`, else the first column, and " +
    "keeps the other columns for the results; a multipart/form-data body carries either in " +
    "its `file` field. These three take up to 100,000 URLs and 20 MiB; blank lines and lines " +
    "starting with `#` are skipped, and a line that is not a valid URL becomes an item failed " +
    "as `invalid_url` (detail `line N: ...`) instead of refusing the list. Add `?refresh=true` " +
    "and `?callback_url=...` with a text or CSV body, or send them as form fields.",
  middleware: [limitBody] as const,
  parameters: [idempotencyKeyParameter],
  request: {
    query: z.object({
      refresh: z.enum(["true", "false"]).optional().openapi({
        description: "For text/plain and text/csv bodies: refresh stored URLs (as `refresh` in " +
          "JSON: a conditional request, a `304` keeps the stored image).",
      }),
      callback_url: CallbackUrl.optional().openapi({
        description: "For text/plain and text/csv bodies: as `callback_url` in JSON.",
      }),
    }),
    body: {
      required: false,
      content: {
        "application/json": { schema: SubmitBody },
        "text/plain": { schema: listText },
        "text/csv": { schema: listText },
        "multipart/form-data": { schema: formSchema },
      },
    },
  },
  responses: {
    202: {
      description: "The job was recorded (or, with a known `Idempotency-Key` and the same " +
        "request, was recorded before). `Location` names it.",
      headers: z.object({
        Location: z.string().openapi({ example: "/jobs/01KAQ4Z3T7V6B6XG5N3W2R8M9C" }),
      }),
      content: { "application/json": { schema: Job } },
    },
    400: problem(
      "Malformed JSON, CSV or form, a wrong type, an invalid URL in JSON, no valid URL in a " +
        "list, too many URLs, a bad `Idempotency-Key`, or a refused `callback_url`.",
    ),
    413: problem("The body is larger than 2 MiB (JSON) or 20 MiB (text, CSV, multipart)."),
    415: problem("The content type (or the form's `file` part) is not JSON, plain text or CSV."),
    422: problem("The `Idempotency-Key` was used before with a different request."),
  },
});

export const listImages = createRoute({
  method: "get",
  path: "/images",
  tags: ["Images"],
  summary: "List stored images, oldest first",
  request: { query: z.object({ limit: Limit(100, 1000), cursor: Cursor }) },
  responses: {
    200: {
      description: "One page of images.",
      content: { "application/json": { schema: ImagePage } },
    },
    400: problem("A query parameter is invalid (including an unknown cursor)."),
  },
});

const binary = z.string().openapi({ format: "binary" });
const imageTypes = [
  "image/jpeg",
  "image/png",
  "image/gif",
  "image/webp",
  "image/avif",
  "image/bmp",
  "image/tiff",
  "image/vnd.microsoft.icon",
];
const imageContent = Object.fromEntries(imageTypes.map((t) => [t, { schema: binary }]));

const contentHeaders = z.object({
  "Content-Type": z.string().openapi({ example: "image/png" }),
  "Content-Length": z.string().openapi({ example: "40213" }),
  ETag: z.string().openapi({ description: "The SHA-256 of the bytes, quoted." }),
  "Accept-Ranges": z.string().optional().openapi({
    example: "bytes",
    description: "Sent on HEAD and on ranges: a single byte range is honoured (not on " +
      "transformed answers, which are always whole).",
  }),
  Vary: z.string().optional().openapi({
    example: "Accept",
    description: "`Accept` on answers to `format=auto`.",
  }),
});

/**
 * The transform parameters (issue 9). Read by routes/transformed.ts itself,
 * which gives the field errors; these schemas document the contract.
 */
const transformQuery = {
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

const contentRequest = { query: UrlQuery.extend(transformQuery) };

/**
 * Documented but read by the handler itself: both are optional strings, and
 * skipping a validator on the hottest route is measurably faster.
 */
const contentHeaderParameters = [
  {
    name: "Range",
    in: "header" as const,
    required: false,
    description: "A single range, e.g. `bytes=0-1023`. Several ranges get the whole image.",
    schema: { type: "string" as const },
  },
  {
    name: "If-None-Match",
    in: "header" as const,
    required: false,
    description: "An ETag from an earlier answer: `304` when it still matches.",
    schema: { type: "string" as const },
  },
];

const contentResponses = {
  200: {
    description: "The stored bytes, or with transform parameters the transformed copy (its " +
      "own SHA-256 as ETag).",
    headers: contentHeaders,
    content: imageContent,
  },
  206: {
    description: "The requested range of the stored bytes.",
    headers: contentHeaders.extend({
      "Content-Range": z.string().openapi({ example: "bytes 0-1023/40213" }),
    }),
    content: imageContent,
  },
  304: { description: "The bytes match the `If-None-Match` ETag." },
  400: problem(
    "`url` is missing or too long, or a transform parameter is invalid: a bad value, an " +
      "unknown parameter next to transform ones, `fit` without `w` or `h`, `quality` with " +
      "`format=png`, `variant` with other transform parameters, or an output over 8,192 px a " +
      "side or MAX_IMAGE_PIXELS (also when the aspect ratio makes it so).",
  ),
  404: problem("No image is stored under this URL, or it has no variant of that name."),
  416: problem("The range lies outside the image."),
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

export const getImageContent = createRoute({
  method: "get",
  path: "/images/content",
  tags: ["Images"],
  summary: "Fetch an image's bytes by its URL",
  description: "Streams the stored bytes with the type identified from them when downloaded. " +
    "With transform parameters (`w`, `h`, `fit`, `format`, `quality`, `metadata`, `variant`) " +
    "answers a resized or re-encoded copy, made once and then served from storage.",
  request: contentRequest,
  parameters: contentHeaderParameters,
  responses: contentResponses,
});

export const headImageContent = createRoute({
  method: "head",
  path: "/images/content",
  tags: ["Images"],
  summary: "Headers of an image's bytes by its URL",
  request: contentRequest,
  parameters: contentHeaderParameters,
  responses: contentResponses,
});

export const getImageMetadata = createRoute({
  method: "get",
  path: "/images/metadata",
  tags: ["Images"],
  summary: "An image's record by its URL",
  request: { query: UrlQuery },
  responses: {
    200: { description: "The image record.", content: { "application/json": { schema: Image } } },
    400: problem("`url` is missing or too long."),
    404: problem("No image is stored under this URL."),
  },
});

export type SubmitImagesRoute = typeof submitImages;
export type ListImagesRoute = typeof listImages;
export type GetImageContentRoute = typeof getImageContent;
export type HeadImageContentRoute = typeof headImageContent;
export type GetImageMetadataRoute = typeof getImageMetadata;

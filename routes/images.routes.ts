import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { IMAGE_FORMATS } from "../services/image/types.ts";
import { MAX_LIST_BODY_BYTES } from "../services/intake/body_reader.ts";
import { MAX_IDEMPOTENCY_KEY } from "../services/intake/intake.ts";
import { bodyHeaders, deliveryHeaderParameters, deliveryResponses } from "./delivery.routes.ts";
import {
  TRANSFORM_400,
  transformHeaders,
  transformQuery,
  transformResponses,
} from "./transform.routes.ts";
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

/** The shape of a job id (a ULID). */
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

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
  description: "Filters combine. A request reads a bounded number of entries (1,000), so a " +
    "filtered page may hold fewer than `limit` items, even none, while more follow: follow " +
    "`nextCursor` until it is null. The cursor is opaque and belongs to the same filters.",
  request: {
    query: z.object({
      limit: Limit(100, 1000),
      cursor: Cursor,
      format: z.enum(IMAGE_FORMATS).optional().openapi({
        description: "Only images of this stored format.",
      }),
      jobId: z.string().regex(ULID, "must be a job id").optional().openapi({
        description: "Only the images of this job's completed URLs, in the job's order (as " +
          "stored now: a later refresh or upload under the same URL shows).",
        example: "01KAQ4Z3T7V6B6XG5N3W2R8M9C",
      }),
      since: z.iso.datetime({ offset: true }).optional().openapi({
        description: "Only images stored (`storedAt`) at or after this RFC 3339 date-time.",
        example: "2026-11-23T18:00:00Z",
      }),
    }),
  },
  responses: {
    200: {
      description: "One page of images.",
      content: { "application/json": { schema: ImagePage } },
    },
    400: problem("A query parameter is invalid (including an unknown cursor)."),
    404: problem("No job has the `jobId`."),
  },
});

const contentHeaders = bodyHeaders.extend({
  ...transformHeaders,
  "Content-Disposition": z.string().openapi({
    example: 'inline; filename="42.jpg"',
    description: "`inline`, named after the last segment of the URL's path (percent-decoded; " +
      "unsafe characters replaced; `filename*` when not plain ASCII), with the extension of " +
      "the format served; `image.<ext>` when the path names no file.",
  }),
});

const contentRequest = { query: UrlQuery.extend(transformQuery) };

const contentResponses = deliveryResponses(
  contentHeaders,
  "No image is stored under this URL, or it has no variant of that name.",
  `\`url\` is missing or too long, ${TRANSFORM_400}.`,
  { ...transformResponses, 500: problem("The stored bytes are missing (run `deno task fsck`).") },
);

export const getImageContent = createRoute({
  method: "get",
  path: "/images/content",
  tags: ["Images"],
  summary: "Fetch an image's bytes by its URL",
  description: "Streams the stored bytes with the type identified from them when downloaded. " +
    "With transform parameters (`w`, `h`, `fit`, `format`, `quality`, `metadata`, `variant`) " +
    "answers a resized or re-encoded copy, made once and then served from storage.",
  request: contentRequest,
  parameters: deliveryHeaderParameters,
  responses: contentResponses,
});

export const headImageContent = createRoute({
  method: "head",
  path: "/images/content",
  tags: ["Images"],
  summary: "Headers of an image's bytes by its URL",
  request: contentRequest,
  parameters: deliveryHeaderParameters,
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

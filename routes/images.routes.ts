import { createRoute, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { problem, ProblemError } from "./problem.ts";
import { Cursor, Image, ImagePage, Job, Limit, SubmitBody, UrlQuery } from "./schemas.ts";

/** Largest accepted request body. */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;

const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ProblemError(413, `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
  },
});

const listText = z.string().openapi({
  example: "https://images.example.com/cats/42.jpg\nhttps://cdn.example.org/a.png\n",
});

export const submitImages = createRoute({
  method: "post",
  path: "/images",
  tags: ["Images"],
  summary: "Submit image URLs for download",
  description: "Records a job and answers at once; the images are downloaded in the background. " +
    "JSON takes `urls` (or `source_url`) and an optional `refresh`. A text/plain body is one URL " +
    "per line; a text/csv body takes the column named `url` or `source_url`, else the first " +
    "column. Add `?refresh=true` to refresh with a text body. Blank lines and lines starting " +
    "with `#` are skipped in text bodies.",
  middleware: [limitBody] as const,
  request: {
    query: z.object({
      refresh: z.enum(["true", "false"]).optional().openapi({
        description: "For text/plain and text/csv bodies: refresh stored URLs (as `refresh` in " +
          "JSON: a conditional request, a `304` keeps the stored image).",
      }),
    }),
    body: {
      required: false,
      content: {
        "application/json": { schema: SubmitBody },
        "text/plain": { schema: listText },
        "text/csv": { schema: listText },
      },
    },
  },
  responses: {
    202: {
      description: "The job was recorded. `Location` names it.",
      headers: z.object({
        Location: z.string().openapi({ example: "/jobs/01KAQ4Z3T7V6B6XG5N3W2R8M9C" }),
      }),
      content: { "application/json": { schema: Job } },
    },
    400: problem("Malformed JSON or CSV, a wrong type, an invalid URL, or too many URLs."),
    413: problem("The body is larger than 2 MiB."),
    415: problem("The content type is not JSON, plain text or CSV."),
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
    description: "Sent on HEAD and on ranges: a single byte range is honoured.",
  }),
});

const contentRequest = { query: UrlQuery };

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
  200: { description: "The stored bytes.", headers: contentHeaders, content: imageContent },
  206: {
    description: "The requested range of the stored bytes.",
    headers: contentHeaders.extend({
      "Content-Range": z.string().openapi({ example: "bytes 0-1023/40213" }),
    }),
    content: imageContent,
  },
  304: { description: "The bytes match the `If-None-Match` ETag." },
  400: problem("`url` is missing or too long."),
  404: problem("No image is stored under this URL."),
  416: problem("The range lies outside the image."),
};

export const getImageContent = createRoute({
  method: "get",
  path: "/images/content",
  tags: ["Images"],
  summary: "Fetch an image's bytes by its URL",
  description: "Streams the stored bytes with the type identified from them when downloaded.",
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

import { createRoute, z } from "@hono/zod-openapi";
import { problem } from "./problem.ts";
import { Image, Job, UrlQuery } from "./schemas.ts";

const KEY_RULE = "An http(s) URL, or `upload:` followed by a name without spaces " +
  "(at most 8 KiB).";

const LIMITS = "Identified and checked as downloads are: the bytes decide the format (never a " +
  "content type or file name); SVG and HEIC are refused; at most `MAX_IMAGE_BYTES` " +
  "(refused while streaming, and at once when a declared `Content-Length` is larger), and " +
  "at most `MAX_IMAGE_PIXELS` as declared by the image's header. A refused body leaves " +
  "nothing stored.";

const refusals = {
  413: problem(
    "Over `MAX_IMAGE_BYTES` (type `urn:image-ingest:problem:too_large`), declared or streamed.",
  ),
  415: problem(
    "Not a supported image: `not_an_image`, or `unsupported_format` (SVG, HEIC) as the type.",
  ),
  422: problem("The header declares more than `MAX_IMAGE_PIXELS` (type `...:too_many_pixels`)."),
  503: problem(
    "The bytes were removed while being stored (a concurrent delete): retry (`Retry-After`).",
  ),
};

const stored = (description: string, withLocation: boolean) => ({
  description,
  ...(withLocation
    ? {
      headers: z.object({
        Location: z.string().openapi({ example: "/images/metadata?url=upload%3A9f2c6a1e..." }),
      }),
    }
    : {}),
  content: { "application/json": { schema: Image } },
});

/**
 * Documented as a plain schema: a Zod schema here would make the framework
 * read and buffer the whole form before the handler runs; the handler
 * streams it instead.
 */
const uploadForm = {
  type: "object" as const,
  required: ["image"],
  properties: {
    image: {
      type: "string" as const,
      format: "binary",
      description: "The image file (the field name of the services this one replaces).",
    },
    url: {
      type: "string" as const,
      maxLength: 8192,
      description: `The key to store it under. ${KEY_RULE} Default: \`upload:<sha256>\` of the ` +
        "bytes. May come before or after `image`.",
    },
  },
};

export const uploadImage = createRoute({
  method: "post",
  path: "/images/upload",
  tags: ["Images"],
  summary: "Upload an image file",
  description:
    `Stores the file of the \`image\` part under the \`url\` field (or \`upload:<sha256>\`), replacing what was stored under that key. ${LIMITS}`,
  request: {
    body: { required: true, content: { "multipart/form-data": { schema: uploadForm } } },
  },
  responses: {
    201: stored("Stored. `Location` names its metadata.", true),
    400: problem(
      "A malformed form, no `image` part, two of them, an empty file, an unknown field, or a " +
        "`url` that is too long or not a valid key.",
    ),
    ...refusals,
    413: problem(
      "The file is over `MAX_IMAGE_BYTES` (type `urn:image-ingest:problem:too_large`), or the " +
        "whole form over `MAX_IMAGE_BYTES` + 64 KiB; declared or streamed.",
    ),
    415: problem(
      "The body is not `multipart/form-data`, or the file is not a supported image " +
        "(`not_an_image`, `unsupported_format` as the type).",
    ),
  },
});

const binary = { type: "string" as const, format: "binary" };

export const putImageContent = createRoute({
  method: "put",
  path: "/images/content",
  tags: ["Images"],
  summary: "Store an image's bytes under a key",
  description:
    `Replaces (or creates) the image stored under \`url\` with the raw body. ${LIMITS} ` +
    "The request's Content-Type is not consulted.",
  request: {
    query: z.object({
      url: UrlQuery.shape.url.openapi({ description: KEY_RULE }),
    }),
    body: {
      required: true,
      content: {
        "application/octet-stream": { schema: binary },
        "image/*": { schema: binary },
      },
    },
  },
  responses: {
    200: stored("Replaced the image stored under `url`.", false),
    201: stored("Created: nothing was stored under `url`. `Location` names its metadata.", true),
    400: problem("`url` is missing or not a valid key, or the body is empty or broke off."),
    ...refusals,
  },
});

export const refreshImage = createRoute({
  method: "post",
  path: "/images/refresh",
  tags: ["Images"],
  summary: "Download a stored URL again now",
  description: "Records a one-URL job with `refresh: true` (a conditional request: a `304` " +
    "keeps the stored image) and answers at once.",
  request: { query: UrlQuery },
  responses: {
    202: {
      description: "The job was recorded; `Location` names it.",
      headers: z.object({
        Location: z.string().openapi({ example: "/jobs/01KAQ4Z3T7V6B6XG5N3W2R8M9C" }),
      }),
      content: { "application/json": { schema: Job } },
    },
    400: problem("`url` is missing or too long."),
    404: problem("No image is stored under this URL."),
    409: problem("The key is not an http(s) URL (an upload has no origin to download from)."),
  },
});

export type UploadImageRoute = typeof uploadImage;
export type PutImageContentRoute = typeof putImageContent;
export type RefreshImageRoute = typeof refreshImage;

import { createRoute, z } from "@hono/zod-openapi";
import { bodyHeaders, deliveryHeaderParameters, deliveryResponses } from "./delivery.routes.ts";
import { problem } from "./problem.ts";
import {
  TRANSFORM_400,
  transformHeaders,
  transformQuery,
  transformResponses,
} from "./transform.routes.ts";

export const Sha256Param = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: "must be 64 lowercase hex digits" })
    .openapi({
      param: { name: "sha256", in: "path" },
      description: "The SHA-256 of the bytes, as `sha256` and `blobUrl` of an image give it.",
      example: "9f2c6a1e0d4b5c7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e",
    }),
});

// Named variants belong to images stored under a URL, not to bare bytes.
const { variant: _, ...blobTransformQuery } = transformQuery;
const blobRequest = { params: Sha256Param, query: z.object(blobTransformQuery) };

const blobResponses = deliveryResponses(
  bodyHeaders.extend(transformHeaders),
  "No stored image refers to this hash (never stored, or no longer referred to).",
  `The hash is not 64 lowercase hex digits, ${TRANSFORM_400}.`,
  {
    ...transformResponses,
    500: problem(
      "The blob is referred to but its bytes are missing or are not an identifiable image: " +
        "storage is damaged (run `deno task fsck`).",
    ),
  },
);

const description = "The same bytes as `/images/content` by their SHA-256, served while a " +
  "stored image refers to them, with the type identified from the bytes. They never change " +
  "under their hash: `Cache-Control: public, max-age=31536000, immutable`. The transform " +
  "parameters of `/images/content` (but `variant`) give a resized or re-encoded copy, cached.";

export const getBlob = createRoute({
  method: "get",
  path: "/blobs/{sha256}",
  tags: ["Images"],
  summary: "Fetch stored bytes by their SHA-256",
  description,
  request: blobRequest,
  parameters: deliveryHeaderParameters,
  responses: blobResponses,
});

export const headBlob = createRoute({
  method: "head",
  path: "/blobs/{sha256}",
  tags: ["Images"],
  summary: "Headers of stored bytes by their SHA-256",
  request: blobRequest,
  parameters: deliveryHeaderParameters,
  responses: blobResponses,
});

export type GetBlobRoute = typeof getBlob;
export type HeadBlobRoute = typeof headBlob;

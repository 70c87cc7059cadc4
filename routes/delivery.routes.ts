/**
 * The contract shared by the routes that deliver image bytes
 * (`/images/content`, `/blobs/{sha256}`): their request headers, response
 * headers and the responses that routes/delivery.ts gives.
 */
import { z } from "@hono/zod-openapi";
import { problem } from "./problem.ts";

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

const header = (name: string, description: string) => ({
  name,
  in: "header" as const,
  required: false,
  description,
  schema: { type: "string" as const },
});

/**
 * Documented but read by the handler itself: all are optional strings, and
 * skipping a validator on the hottest route is measurably faster.
 */
export const deliveryHeaderParameters = [
  header(
    "Range",
    "A single range, e.g. `bytes=0-1023`. Several ranges get the whole image.",
  ),
  header(
    "If-Range",
    "With `Range`: the range is served only if this is the current strong `ETag`, or an " +
      "HTTP-date equal to `Last-Modified`; otherwise the whole image (`200`). Weak ETags never " +
      "match.",
  ),
  header(
    "If-None-Match",
    "ETags from earlier answers (weak comparison; `*` matches): `304` when one matches.",
  ),
  header(
    "If-Modified-Since",
    "An HTTP-date: `304` when `Last-Modified` is not later. Ignored when `If-None-Match` is " +
      "sent, and when it is not a valid HTTP-date.",
  ),
];

/** Headers of every answer with the bytes or about them (200, 206, 304). */
export const validatorHeaders = z.object({
  ETag: z.string().openapi({ description: "The SHA-256 of the bytes, quoted (a strong ETag)." }),
  "Last-Modified": z.string().optional().openapi({
    example: "Thu, 03 Dec 2026 20:58:24 GMT",
    description: "When the bytes were stored.",
  }),
  "Cache-Control": z.string().openapi({
    example: "public, max-age=3600",
    description: "`CONTENT_CACHE_CONTROL` for `/images/content` (a refresh can change what a " +
      "URL answers); `public, max-age=31536000, immutable` for `/blobs/{sha256}`.",
  }),
});

/** Headers of answers with the bytes (200, 206). */
export const bodyHeaders = validatorHeaders.extend({
  "Content-Type": z.string().openapi({
    example: "image/png",
    description: "Identified from the bytes, never from what the origin said.",
  }),
  "Content-Length": z.string().openapi({ example: "40213" }),
  "Accept-Ranges": z.string().optional().openapi({
    example: "bytes",
    description: "Sent on HEAD, on ranges and on streamed bodies: a single byte range is " +
      "honoured.",
  }),
  "X-Content-Type-Options": z.string().openapi({ example: "nosniff" }),
  "Cross-Origin-Resource-Policy": z.string().openapi({
    example: "cross-origin",
    description: "Other sites may embed the images.",
  }),
});

/** The answers of routes/delivery.ts, with the route's own headers and 400/404. */
export function deliveryResponses<H extends typeof bodyHeaders>(
  headers: H,
  notFound: string,
  badRequest: string,
  errors: Record<number, ReturnType<typeof problem>> = {},
) {
  return {
    200: { description: "The stored bytes.", headers, content: imageContent },
    206: {
      description: "The requested range of the stored bytes (`If-Range`, when sent, matched).",
      headers: headers.extend({
        "Content-Range": z.string().openapi({ example: "bytes 0-1023/40213" }),
      }),
      content: imageContent,
    },
    304: {
      description: "Not modified: `If-None-Match` matched, or (without it) nothing was stored " +
        "after `If-Modified-Since`.",
      headers: validatorHeaders,
    },
    400: problem(badRequest),
    404: problem(notFound),
    416: problem("The range lies outside the image (`Content-Range: bytes */<size>`)."),
    ...errors,
  };
}

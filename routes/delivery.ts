/**
 * Image bytes as caches and CDNs expect them, shared by `/images/content`
 * and `/blobs/{sha256}`: conditional requests in RFC 9110 13.2.2's order
 * (If-None-Match, else If-Modified-Since, then Range under If-Range), one
 * byte range, 416. Plain Request-to-Response with no Hono: these are the
 * hottest routes, and each header built per request costs throughput, so
 * the headers common to every answer are built once per representation
 * and passed through as they are when nothing is added.
 */
import type { ByteRange } from "../services/blobs/blob_store.ts";
import type { ImageBody } from "../services/image_content.ts";
import { parseHttpDate } from "./delivery_date.ts";
import { ProblemError } from "./problem.ts";
import { parseRange } from "./range.ts";

/** What one URL delivers: its validators and the headers every answer about it carries. */
export interface Representation {
  /** A strong entity tag, quoted. */
  readonly etag: string;
  /** `Last-Modified` in whole seconds since the epoch; null when there is none. */
  readonly modifiedSec: number | null;
  /** Length of the whole body. */
  readonly size: number;
  /** Type, validators, caching...: sent on 200, 206 and 304 alike; never changed here. */
  readonly headers: Readonly<Record<string, string>>;
}

/** The body, or a range of it; null when the stored bytes are missing. */
export type OpenBody = (range?: ByteRange) => Promise<ImageBody | null>;

/** Answers a GET or HEAD for `rep`; throws ProblemError for 416 and missing bytes. */
export async function deliver(
  req: Request,
  rep: Representation,
  open: OpenBody,
): Promise<Response> {
  const h = req.headers;
  if (notModified(h, rep)) return new Response(null, { status: 304, headers: rep.headers });
  const rangeHeader = h.get("range");
  const range = rangeHeader !== null && ifRangeHolds(h.get("if-range"), rep)
    ? parseRange(rangeHeader, rep.size)
    : null;
  if (range === "unsatisfiable") {
    throw new ProblemError(
      416,
      `The range lies outside the image's ${rep.size} bytes.`,
      undefined,
      undefined,
      { "Content-Range": `bytes */${rep.size}` },
    );
  }
  const withBody = req.method !== "HEAD";
  const body = withBody ? await open(range ?? undefined) : null;
  if (withBody && !body) {
    throw new ProblemError(
      500,
      "The stored bytes of this image are missing; run `deno task fsck`.",
    );
  }
  let headers = rep.headers;
  if (range) {
    headers = {
      ...headers,
      "Accept-Ranges": "bytes",
      "Content-Range": `bytes ${range.start}-${range.end}/${rep.size}`,
      "Content-Length": String(range.end - range.start + 1),
    };
  } else if (!(body instanceof Uint8Array)) {
    // HEAD and streamed bodies; Deno.serve writes it itself for bytes in memory.
    headers = { ...headers, "Accept-Ranges": "bytes", "Content-Length": String(rep.size) };
  }
  return new Response(body as BodyInit | null, { status: range ? 206 : 200, headers });
}

/**
 * 304 or not. If-None-Match uses the weak comparison; when it is present,
 * If-Modified-Since is ignored (RFC 9110 13.1.3), as is an invalid date.
 */
function notModified(h: Headers, rep: Representation): boolean {
  const inm = h.get("if-none-match");
  if (inm !== null) {
    return inm === "*" || inm.split(",").some((t) => t.trim().replace(/^W\//, "") === rep.etag);
  }
  const ims = h.get("if-modified-since");
  if (ims === null || rep.modifiedSec === null) return false;
  const since = parseHttpDate(ims);
  return since !== null && rep.modifiedSec <= since;
}

/**
 * Whether a Range may be honoured (RFC 9110 13.1.5): always without
 * If-Range; else only for our strong ETag exactly, or a date equal to
 * Last-Modified. A weak ETag never matches. Last-Modified counts as strong:
 * a URL's bytes are not stored twice within one second in practice, and a
 * blob's bytes never change.
 */
function ifRangeHolds(value: string | null, rep: Representation): boolean {
  if (value === null) return true;
  if (value.startsWith('"')) return value === rep.etag;
  if (value.startsWith("W/")) return false;
  return rep.modifiedSec !== null && parseHttpDate(value) === rep.modifiedSec;
}

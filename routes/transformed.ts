/**
 * Transformed image bytes (issue 9): `GET`/`HEAD /images/content?url=&w=...`
 * now, and any route serving a stored blob later (`/blobs/{sha256}`), since
 * it takes a generic source. A derivative is served like an original: its
 * own SHA-256 as ETag, 304 on a match, its identified type.
 */
import { TransformError } from "../services/transform/errors.ts";
import { parseTransformQuery, resolveParams } from "../services/transform/params.ts";
import type { Transforms, TransformSource } from "../services/transform/transforms.ts";
import { variantParams } from "../services/transform/variants.ts";
import { deliver, type Representation } from "./delivery.ts";
import { epochSeconds, httpDate } from "./delivery_date.ts";
import { contentDisposition, downloadName } from "./delivery_filename.ts";
import { problemAnswer, ProblemError } from "./problem.ts";

const STATUS = { invalid: 400, cannot: 422, busy: 503, unavailable: 501, missing: 500 } as const;

/** The transform's refusal as the problem the contract declares. */
function asProblem(err: TransformError): ProblemError {
  const headers: Record<string, string> | undefined = err.retryAfterS === undefined
    ? undefined
    : { "Retry-After": String(err.retryAfterS) };
  const slug = err.kind === "invalid"
    ? "validation-error"
    : err.kind === "cannot"
    ? "cannot-transform"
    : undefined;
  return new ProblemError(STATUS[err.kind], err.message, err.errors, slug, headers);
}

/** How the calling route serves its originals. */
export interface TransformedOptions {
  /** The route's own query parameters (`url`), which are not transform parameters. */
  routeParams: readonly string[];
  /** The route's Cache-Control for originals, sent with derivatives too; none when absent. */
  cacheControl?: string;
  /** When the source's bytes were stored (epoch ms): a derivative changes only with them. */
  lastModified?: number;
  /** The URL the source is stored under, to name the file (Content-Disposition). */
  url?: string;
}

/**
 * Answers a request with transform parameters for `source`. Every refusal
 * is a problem+json answer, never a throw.
 */
export async function serveTransformed(
  req: Request,
  query: URLSearchParams,
  source: TransformSource,
  transforms: Transforms | null | undefined,
  opts: TransformedOptions,
): Promise<Response> {
  try {
    return await serve(req, query, source, transforms, opts);
  } catch (err) {
    if (err instanceof TransformError) return problemAnswer(asProblem(err));
    if (err instanceof ProblemError) return problemAnswer(err);
    throw err;
  }
}

async function serve(
  req: Request,
  query: URLSearchParams,
  source: TransformSource,
  transforms: Transforms | null | undefined,
  { routeParams, cacheControl, lastModified, url }: TransformedOptions,
): Promise<Response> {
  if (!transforms) {
    throw new ProblemError(501, "Image transforms are not configured on this instance.");
  }
  const ask = parseTransformQuery(query, { maxPixels: transforms.maxPixels, routeParams });
  let params;
  let varyAccept = false;
  if (ask.kind === "variant") {
    const spec = source.variants?.find((v) => v.name === ask.name);
    if (!spec) throw new ProblemError(404, `This image has no variant named '${ask.name}'.`);
    params = variantParams(spec, source);
  } else {
    ({ params, varyAccept } = resolveParams(ask.request, source, req.headers.get("accept")));
  }
  const derivative = await transforms.derive(source, params);
  const { record } = derivative;
  // Delivered like an original (routes/delivery.ts): conditionals, one
  // range, the same headers, with the derivative's own ETag and type.
  const headers: Record<string, string> = {
    "Content-Type": record.contentType,
    ETag: `"${record.sha256}"`,
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
  };
  if (lastModified !== undefined) headers["Last-Modified"] = httpDate(lastModified);
  if (cacheControl) headers["Cache-Control"] = cacheControl;
  if (url !== undefined) {
    headers["Content-Disposition"] = contentDisposition(downloadName(url, record.format));
  }
  if (varyAccept) headers.Vary = "Accept";
  const rep: Representation = {
    etag: headers.ETag,
    modifiedSec: lastModified === undefined ? null : epochSeconds(lastModified),
    size: record.bytes,
    headers,
  };
  return await deliver(req, rep, (range) => transforms.open(source, params, derivative, range));
}

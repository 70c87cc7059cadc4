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
  { routeParams, cacheControl }: TransformedOptions,
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
  const etag = `"${record.sha256}"`;
  // The headers of the plain route (routes/image_content.ts), for the same reasons.
  const headers: Record<string, string> = {
    "Content-Type": record.contentType,
    ETag: etag,
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
  };
  if (cacheControl) headers["Cache-Control"] = cacheControl;
  if (varyAccept) headers.Vary = "Accept";
  const inm = req.headers.get("if-none-match");
  if (
    inm && (inm.trim() === "*" || inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag))
  ) {
    return new Response(null, { status: 304, headers });
  }
  if (req.method === "HEAD") {
    headers["Content-Length"] = String(record.bytes);
    return new Response(null, { status: 200, headers });
  }
  const body = await transforms.open(source, params, derivative);
  if (!(body instanceof Uint8Array)) headers["Content-Length"] = String(record.bytes);
  return new Response(body as BodyInit, { status: 200, headers });
}

import type { ImageContent } from "../services/image_content.ts";
import type { ImagesRepo } from "../services/store/images_repo.ts";
import { asksForTransform } from "../services/transform/params.ts";
import type { Transforms } from "../services/transform/transforms.ts";
import { notStored, problemBody, ProblemError, validationProblem } from "./problem.ts";
import { parseRange } from "./range.ts";
import { UrlQuery } from "./schemas.ts";
import { serveTransformed } from "./transformed.ts";

/** The path of the image bytes route, served by {@link serveImageContent}. */
export const CONTENT_PATH = "/images/content";

const problem = (err: ProblemError): Response =>
  new Response(JSON.stringify(problemBody(err.status, err.message, err.errors, err.slug)), {
    status: err.status,
    headers: { ...err.headers, "content-type": "application/problem+json" },
  });

/**
 * `GET` and `HEAD /images/content?url=`, as a plain Request-to-Response
 * function. It is the hottest route, so `createApp` calls it before Hono's
 * router and middleware (a bare Hono app alone costs about a quarter of the
 * throughput here); the OpenAPI route declares the same contract, and its
 * handler calls this too. Validation and errors are those of every route.
 */
export async function serveImageContent(
  req: Request,
  url: URL,
  deps: ContentDeps,
): Promise<Response> {
  try {
    return await serve(req, url, deps);
  } catch (err) {
    if (err instanceof ProblemError) return problem(err);
    throw err;
  }
}

interface ContentDeps {
  images: ImagesRepo;
  content: ImageContent;
  /** Null or absent when sharp could not be loaded: transforms answer 501. */
  transforms?: Transforms | null;
}

async function serve(
  req: Request,
  url: URL,
  { images, content, transforms }: ContentDeps,
): Promise<Response> {
  const query = UrlQuery.safeParse({ url: url.searchParams.get("url") ?? undefined });
  if (!query.success) throw validationProblem("query parameters", query.error);
  const imageUrl = query.data.url;
  const record = await images.getRecentByUrl(imageUrl);
  if (!record) throw notStored(imageUrl);
  // The size check first keeps the plain path's cost to one comparison.
  if (url.searchParams.size > 1 && asksForTransform(url.searchParams)) {
    return serveTransformed(req, url.searchParams, record, transforms, { routeParams: ["url"] });
  }
  const etag = `"${record.sha256}"`;
  // Few headers on purpose: on this route each one costs a few percent of
  // throughput (measured with wrk). Only raster types identified from the
  // bytes are ever served, and nosniff keeps browsers to that type. Without
  // Cache-Control or Last-Modified, caches revalidate with the ETag before
  // reuse, which a refresh needs.
  const headers: Record<string, string> = {
    "Content-Type": record.contentType,
    ETag: etag,
    "X-Content-Type-Options": "nosniff",
    // Images are meant to be embedded by other sites.
    "Cross-Origin-Resource-Policy": "cross-origin",
  };
  const inm = req.headers.get("if-none-match");
  if (
    inm && (inm.trim() === "*" || inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag))
  ) {
    return new Response(null, { status: 304, headers });
  }
  const range = parseRange(req.headers.get("range") ?? undefined, record.bytes);
  if (range === "unsatisfiable") {
    throw new ProblemError(
      416,
      `The range lies outside the image's ${record.bytes} bytes.`,
      undefined,
      undefined,
      { "Content-Range": `bytes */${record.bytes}` },
    );
  }
  const withBody = req.method !== "HEAD";
  const body = withBody ? await content.open(record, range ?? undefined) : null;
  if (withBody && !body) {
    throw new ProblemError(
      500,
      "The stored bytes of this image are missing; run `deno task fsck`.",
    );
  }
  if (range) {
    headers["Accept-Ranges"] = "bytes";
    headers["Content-Range"] = `bytes ${range.start}-${range.end}/${record.bytes}`;
    headers["Content-Length"] = String(range.end - range.start + 1);
  } else if (!(body instanceof Uint8Array)) {
    // HEAD and streamed bodies; Deno.serve writes it itself for bytes in memory.
    headers["Accept-Ranges"] = "bytes";
    headers["Content-Length"] = String(record.bytes);
  }
  return new Response(body as BodyInit | null, { status: range ? 206 : 200, headers });
}

import type { Config } from "../services/config.ts";
import type { ImageContent } from "../services/image_content.ts";
import type { ImagesRepo } from "../services/store/images_repo.ts";
import { asksForTransform } from "../services/transform/params.ts";
import type { Transforms } from "../services/transform/transforms.ts";
import { serveRecord } from "./delivery_record.ts";
import { notStored, problemAnswer, ProblemError, validationProblem } from "./problem.ts";
import { UrlQuery } from "./schemas.ts";
import { serveTransformed } from "./transformed.ts";

/** The path of the image bytes route, served by {@link serveImageContent}. */
export const CONTENT_PATH = "/images/content";

interface ContentDeps {
  images: ImagesRepo;
  content: ImageContent;
  config: Config;
  /** Null or absent when transforms are unavailable: they answer 501. */
  transforms?: Transforms | null;
}

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
    if (err instanceof ProblemError) return problemAnswer(err);
    throw err;
  }
}

async function serve(
  req: Request,
  url: URL,
  { images, content, config, transforms }: ContentDeps,
): Promise<Response> {
  const query = UrlQuery.safeParse({ url: url.searchParams.get("url") ?? undefined });
  if (!query.success) throw validationProblem("query parameters", query.error);
  const imageUrl = query.data.url;
  const record = await images.getRecentByUrl(imageUrl);
  if (!record) throw notStored(imageUrl);
  // The size check first keeps the plain path's cost to one comparison.
  if (url.searchParams.size > 1 && asksForTransform(url.searchParams)) {
    return await serveTransformed(req, url.searchParams, record, transforms, {
      routeParams: ["url"],
      cacheControl: config.contentCacheControl,
      lastModified: record.storedAt,
      url: record.url,
    });
  }
  return await serveRecord(req, record, content, config.contentCacheControl);
}

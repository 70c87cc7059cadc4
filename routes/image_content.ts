import type { Config } from "../services/config.ts";
import type { ImageContent } from "../services/image_content.ts";
import type { ImagesRepo } from "../services/store/images_repo.ts";
import { problemAnswer } from "./delivery.ts";
import { serveRecord } from "./delivery_record.ts";
import { notStored, ProblemError, validationProblem } from "./problem.ts";
import { UrlQuery } from "./schemas.ts";

/** The path of the image bytes route, served by {@link serveImageContent}. */
export const CONTENT_PATH = "/images/content";

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
  deps: { images: ImagesRepo; content: ImageContent; config: Config },
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
  { images, content, config }: { images: ImagesRepo; content: ImageContent; config: Config },
): Promise<Response> {
  const query = UrlQuery.safeParse({ url: url.searchParams.get("url") ?? undefined });
  if (!query.success) throw validationProblem("query parameters", query.error);
  const imageUrl = query.data.url;
  const record = await images.getRecentByUrl(imageUrl);
  if (!record) throw notStored(imageUrl);
  return await serveRecord(req, record, content, config.contentCacheControl);
}

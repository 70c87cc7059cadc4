import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import { urlHash } from "../services/store/ids.ts";
import { decodeCursor, encodeCursor } from "../services/store/page.ts";
import { CsvError, parseCsvUrls, parseLines, uniqueUrls } from "../services/url_list.ts";
import type { AppDeps } from "./deps.ts";
import type {
  GetImageContentRoute,
  GetImageMetadataRoute,
  HeadImageContentRoute,
  ListImagesRoute,
  SubmitImagesRoute,
} from "./images.routes.ts";
import { notStored, ProblemError, validationProblem } from "./problem.ts";
import { serveImageContent } from "./image_content.ts";
import { SubmitBody } from "./schemas.ts";
import { imageView, jobView } from "./views.ts";

/** Reads whichever list format was sent into the JSON request shape, then validates it once. */
async function readSubmission(c: Context, jsonBody: unknown): Promise<SubmitBody> {
  const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  let candidate: unknown = jsonBody;
  if (type === "text/plain" || type === "text/csv") {
    const text = await c.req.text();
    let urls: string[];
    try {
      urls = type === "text/csv" ? parseCsvUrls(text) : parseLines(text);
    } catch (err) {
      if (err instanceof CsvError) throw new ProblemError(400, `Malformed CSV: ${err.message}.`);
      throw err;
    }
    candidate = { urls, ...(c.req.query("refresh") === "true" ? { refresh: true } : {}) };
  } else if (!type) {
    throw new ProblemError(400, "A request body (JSON, plain text or CSV) is required.");
  }
  const parsed = SubmitBody.safeParse(candidate);
  if (!parsed.success) throw validationProblem("request body", parsed.error);
  return parsed.data;
}

export function imageHandlers(deps: AppDeps) {
  const { jobs, images } = deps;

  const submitImages: RouteHandler<SubmitImagesRoute> = async (c) => {
    const body = await readSubmission(c, c.req.valid("json"));
    const list = body.urls ??
      (typeof body.source_url === "string" ? [body.source_url] : body.source_url!);
    const snap = await jobs.create(uniqueUrls(list), body.refresh ?? false);
    deps.onJobCreated?.(snap.job.id);
    return c.json(jobView(snap), 202, { Location: `/jobs/${snap.job.id}` });
  };

  const listImages: RouteHandler<ListImagesRoute> = async (c) => {
    const { limit, cursor } = c.req.valid("query");
    let after: string | undefined;
    if (cursor !== undefined) {
      const part = decodeCursor(cursor);
      if (typeof part !== "string") {
        throw new ProblemError(400, "The cursor is not one this service handed out.", [
          { field: "cursor", message: "unknown cursor" },
        ]);
      }
      after = part;
    }
    const page = await images.list(limit, after);
    return c.json({ items: page.items.map(imageView), nextCursor: encodeCursor(page.last) }, 200);
  };

  const getImageMetadata: RouteHandler<GetImageMetadataRoute> = async (c) => {
    const { url } = c.req.valid("query");
    const record = await images.get(urlHash(url));
    if (!record) throw notStored(url);
    return c.json(imageView(record), 200);
  };

  // Normally answered before Hono (see createApp); these serve the same way
  // should a request reach the router.
  const getImageContent: RouteHandler<GetImageContentRoute> = (c) =>
    serveImageContent(c.req.raw, new URL(c.req.url), deps) as never;
  const headImageContent: RouteHandler<HeadImageContentRoute> = (c) =>
    serveImageContent(c.req.raw, new URL(c.req.url), deps) as never;

  return { submitImages, listImages, getImageMetadata, getImageContent, headImageContent };
}

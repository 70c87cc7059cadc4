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
import { fieldErrors, ProblemError } from "./problem.ts";
import { parseRange } from "./range.ts";
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
  if (!parsed.success) {
    throw new ProblemError(
      400,
      "The request body failed validation.",
      fieldErrors(parsed.error),
      "validation-error",
    );
  }
  return parsed.data;
}

const notStored = (url: string) =>
  new ProblemError(404, `No image is stored under the URL '${url}'.`);

export function imageHandlers(deps: AppDeps) {
  const { jobs, images, content } = deps;

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

  /** GET and HEAD share this: only whether a body is sent differs. */
  const serveContent = async (c: Context, url: string, withBody: boolean): Promise<Response> => {
    const record = await images.getRecentByUrl(url);
    if (!record) throw notStored(url);
    const etag = `"${record.sha256}"`;
    const headers: Record<string, string> = {
      "Content-Type": record.contentType,
      ETag: etag,
      "Accept-Ranges": "bytes",
      "Cache-Control": "public, no-cache",
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": "default-src 'none'; sandbox",
      "Cross-Origin-Resource-Policy": "cross-origin",
    };
    const inm = c.req.header("if-none-match");
    if (
      inm &&
      (inm.trim() === "*" || inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag))
    ) {
      return c.body(null, 304, headers);
    }
    const range = parseRange(c.req.header("range"), record.bytes);
    if (range === "unsatisfiable") {
      throw new ProblemError(
        416,
        `The range lies outside the image's ${record.bytes} bytes.`,
        undefined,
        undefined,
        { "Content-Range": `bytes */${record.bytes}` },
      );
    }
    const stream = withBody ? await content.open(record, range ?? undefined) : null;
    if (withBody && !stream) {
      throw new ProblemError(
        500,
        "The stored bytes of this image are missing; run `deno task fsck`.",
      );
    }
    const body = stream as ReadableStream<Uint8Array<ArrayBuffer>> | Uint8Array<ArrayBuffer> | null;
    if (range) {
      headers["Content-Range"] = `bytes ${range.start}-${range.end}/${record.bytes}`;
      headers["Content-Length"] = String(range.end - range.start + 1);
      return body ? c.body(body, 206, headers) : c.body(null, 206, headers);
    }
    headers["Content-Length"] = String(record.bytes);
    return body ? c.body(body, 200, headers) : c.body(null, 200, headers);
  };

  const getImageContent: RouteHandler<GetImageContentRoute> = (c) =>
    serveContent(c, c.req.valid("query").url, true) as never;
  const headImageContent: RouteHandler<HeadImageContentRoute> = (c) =>
    serveContent(c, c.req.valid("query").url, false) as never;

  return { submitImages, listImages, getImageMetadata, getImageContent, headImageContent };
}

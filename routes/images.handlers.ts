import type { RouteHandler } from "@hono/zod-openapi";
import { urlHash } from "../services/store/ids.ts";
import { findImages } from "../services/store/image_search.ts";
import { decodeCursor, encodeCursor } from "../services/store/page.ts";
import { CallbackRefused, IdempotencyConflict } from "../services/intake/intake.ts";
import type { AppDeps } from "./deps.ts";
import type {
  GetImageContentRoute,
  GetImageMetadataRoute,
  HeadImageContentRoute,
  ListImagesRoute,
  SubmitImagesRoute,
} from "./images.routes.ts";
import { notStored, ProblemError } from "./problem.ts";
import { serveImageContent } from "./image_content.ts";
import { idempotencyKey, readSubmission } from "./submission.ts";
import { imageView, jobView } from "./views.ts";

/** A refused `callback_url` is the client's mistake: 400. */
async function refusedAs400(check: Promise<void>): Promise<void> {
  try {
    await check;
  } catch (err) {
    if (err instanceof CallbackRefused) {
      throw new ProblemError(400, err.message, [{ field: "callback_url", message: err.message }]);
    }
    throw err;
  }
}

export function imageHandlers(deps: AppDeps) {
  const { images, intake } = deps;

  const submitImages: RouteHandler<SubmitImagesRoute> = async (c) => {
    const key = idempotencyKey(c.req.header("idempotency-key"));
    const { spec, fingerprint } = await readSubmission(
      c,
      c.req.valid("json" as never),
      key !== undefined,
    );
    if (spec.callbackUrl !== undefined) await refusedAs400(intake.checkCallback(spec.callbackUrl));
    let accepted;
    try {
      accepted = await intake.submit(spec, key === undefined ? undefined : { key, fingerprint });
    } catch (err) {
      if (err instanceof IdempotencyConflict) throw new ProblemError(422, err.message);
      throw err;
    }
    const { snapshot } = accepted;
    if (!accepted.replayed) deps.onJobCreated?.(snapshot.job.id);
    return c.json(jobView(snapshot), 202, { Location: `/jobs/${snapshot.job.id}` });
  };

  const listImages: RouteHandler<ListImagesRoute> = async (c) => {
    const { limit, cursor, format, jobId, since } = c.req.valid("query");
    // Sequence numbers resume a scan of all images; item indexes one of a job's.
    const wanted = (part: unknown) =>
      jobId === undefined ? typeof part === "string" : typeof part === "number";
    let after: string | number | undefined;
    if (cursor !== undefined) {
      const part = decodeCursor(cursor);
      if (!wanted(part)) {
        throw new ProblemError(400, "The cursor is not one this service handed out.", [
          { field: "cursor", message: "unknown cursor" },
        ]);
      }
      after = part as string | number;
    }
    if (jobId !== undefined && !await deps.jobs.get(jobId)) {
      throw new ProblemError(404, `No job has the id '${jobId}'.`);
    }
    const filter = { format, jobId, since: since === undefined ? undefined : Date.parse(since) };
    const page = await findImages(images, deps.jobs, filter, limit, after);
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

import type { RouteHandler } from "@hono/zod-openapi";
import { BlobFacts } from "../services/blob_facts.ts";
import { serveBlob } from "./blobs.ts";
import type { GetBlobRoute, HeadBlobRoute } from "./blobs.routes.ts";
import type { AppDeps } from "./deps.ts";

/** `/blobs/{sha256}`: `serve` is what createApp calls before the router; the handlers do the same. */
export function blobHandlers(deps: AppDeps) {
  const blobDeps = {
    refs: deps.refs,
    facts: new BlobFacts(deps.blobs, deps.content),
    content: deps.content,
    transforms: deps.transforms,
  };
  const serve = (req: Request, sha256: string) => serveBlob(req, sha256, blobDeps);
  // Normally answered before Hono (see createApp); these serve the same way
  // should a request reach the router.
  const getBlob: RouteHandler<GetBlobRoute> = (c) =>
    serve(c.req.raw, c.req.valid("param").sha256) as never;
  const headBlob: RouteHandler<HeadBlobRoute> = (c) =>
    serve(c.req.raw, c.req.valid("param").sha256) as never;
  return { serve, getBlob, headBlob };
}

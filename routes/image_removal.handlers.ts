import type { RouteHandler } from "@hono/zod-openapi";
import { removeImage } from "../services/images/removal.ts";
import type { AppDeps } from "./deps.ts";
import type { DeleteImageRoute } from "./image_removal.routes.ts";
import { notStored } from "./problem.ts";

export function imageRemovalHandlers(deps: AppDeps) {
  const deleteImage: RouteHandler<DeleteImageRoute> = async (c) => {
    const { url } = c.req.valid("query");
    if (!await removeImage(deps.images, deps.collector, url)) throw notStored(url);
    return c.body(null, 204);
  };
  return { deleteImage };
}

import { OpenAPIHono } from "@hono/zod-openapi";
import { secureHeaders } from "hono/secure-headers";
import type { AppDeps } from "./deps.ts";
import { mountDocs } from "./docs.ts";
import { healthRouter } from "./health.ts";
import { imageHandlers } from "./images.handlers.ts";
import * as imageRoutes from "./images.routes.ts";
import { jobHandlers } from "./jobs.handlers.ts";
import * as jobRoutes from "./jobs.routes.ts";
import { errorHandler, problemResponse, validationHook } from "./problem.ts";

/**
 * Builds the HTTP app. No side effects: it only uses what it is given, so
 * tests build it on an in-memory KV and a temporary directory.
 */
export function createApp(deps: AppDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  // Image bytes carry their own, narrower set (routes/images.handlers.ts): they
  // are embedded by other sites, and the full set costs a fifth of their speed.
  const secure = secureHeaders();
  app.use((c, next) => c.req.path === "/images/content" ? next() : secure(c, next));

  const images = imageHandlers(deps);
  const jobs = jobHandlers(deps);
  app
    .openapi(imageRoutes.submitImages, images.submitImages)
    .openapi(imageRoutes.listImages, images.listImages)
    .openapi(imageRoutes.getImageContent, images.getImageContent)
    .openapi(imageRoutes.headImageContent, images.headImageContent)
    .openapi(imageRoutes.getImageMetadata, images.getImageMetadata)
    .openapi(jobRoutes.getJob, jobs.getJob)
    .openapi(jobRoutes.listJobItems, jobs.listJobItems)
    .route("/", healthRouter(deps));
  mountDocs(app);
  app.get("/", (c) => c.redirect("/docs"));

  app.notFound((c) =>
    problemResponse(c, 404, `Nothing is served at ${c.req.method} ${c.req.path}.`)
  );
  app.onError(errorHandler);
  return app;
}

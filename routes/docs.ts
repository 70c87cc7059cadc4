import { Scalar } from "@scalar/hono-api-reference";
import type { OpenAPIHono } from "@hono/zod-openapi";

/** The document's top-level fields, shared by the served and the committed copy. */
export const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: {
    title: "Image ingestion service",
    version: "1.0.0",
    description: "Submit lists of image URLs; the service downloads them in the background, " +
      "stores the bytes, and serves them back keyed by the exact URL submitted. " +
      "Errors are RFC 9457 `application/problem+json`.",
  },
};

const SCALAR_BUNDLE = new URL(
  "../node_modules/@scalar/api-reference/dist/browser/standalone.js",
  import.meta.url,
);
let bundle: Promise<Uint8Array> | undefined;

/**
 * Serves `/openapi.json`, the Scalar reference at `/docs`, and Scalar's
 * script from the installed npm package: the page must work offline, and
 * Scalar's default would load it from a CDN.
 */
export function mountDocs(app: OpenAPIHono<any>): void {
  app.doc31("/openapi.json", OPENAPI_INFO);
  app.get("/docs/scalar.js", async (c) => {
    bundle ??= Deno.readFile(SCALAR_BUNDLE);
    return c.body(await bundle as Uint8Array<ArrayBuffer>, 200, {
      "Content-Type": "text/javascript; charset=utf-8",
      "Cache-Control": "public, max-age=86400",
    });
  });
  app.get(
    "/docs",
    Scalar({
      url: "/openapi.json",
      cdn: "/docs/scalar.js",
      pageTitle: "Image ingestion service",
      withDefaultFonts: false,
      // Features that call Scalar's hosted services: they cannot work offline
      // and would send the document elsewhere.
      agent: { disabled: true },
      mcp: { disabled: true },
      showDeveloperTools: "never",
    }),
  );
}

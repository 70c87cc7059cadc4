import { createRoute } from "@hono/zod-openapi";
import { problem } from "./problem.ts";
import { UrlQuery } from "./schemas.ts";

export const deleteImage = createRoute({
  method: "delete",
  path: "/images",
  tags: ["Images"],
  summary: "Delete an image by its URL",
  description: "Removes the image from the index at once: its content and metadata answer " +
    "`404` from then on. Its bytes, and the resized or recompressed versions made from them, " +
    "are deleted from storage as soon as no other stored URL has the same bytes (reference " +
    "counted). Submitting the URL again downloads it anew.",
  request: { query: UrlQuery },
  responses: {
    204: { description: "The image was removed." },
    400: problem("`url` is missing or too long."),
    404: problem("No image is stored under this URL."),
  },
});

export type DeleteImageRoute = typeof deleteImage;

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppDeps } from "./deps.ts";
import { problem, ProblemError } from "./problem.ts";

export const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["Service"],
  summary: "Liveness and readiness",
  responses: {
    200: {
      description: "The service and its storage answer.",
      content: {
        "application/json": {
          schema: z.object({ status: z.literal("ok") }).openapi("Health"),
        },
      },
    },
    503: problem("KV or blob storage does not answer."),
  },
});

export function healthRouter(deps: AppDeps) {
  return new OpenAPIHono().openapi(healthz, async (c) => {
    if (deps.healthy && !await deps.healthy().catch(() => false)) {
      throw new ProblemError(503, "Storage does not answer.");
    }
    return c.json({ status: "ok" as const }, 200);
  });
}

import type { RouteHandler } from "@hono/zod-openapi";
import { isUlid } from "../services/store/ids.ts";
import { decodeCursor, encodeCursor } from "../services/store/page.ts";
import type { AppDeps } from "./deps.ts";
import type { GetJobRoute, ListJobItemsRoute } from "./jobs.routes.ts";
import { ProblemError } from "./problem.ts";
import { itemView, jobView } from "./views.ts";

const noSuchJob = (id: string) => new ProblemError(404, `No job has the id '${id}'.`);

export function jobHandlers({ jobs }: AppDeps) {
  const getJob: RouteHandler<GetJobRoute> = async (c) => {
    const { id } = c.req.valid("param");
    const snap = isUlid(id) ? await jobs.get(id) : null;
    if (!snap) throw noSuchJob(id);
    return c.json(jobView(snap), 200);
  };

  const listJobItems: RouteHandler<ListJobItemsRoute> = async (c) => {
    const { id } = c.req.valid("param");
    const { state, limit, cursor } = c.req.valid("query");
    let after: number | undefined;
    if (cursor !== undefined) {
      const part = decodeCursor(cursor);
      if (typeof part !== "number") {
        throw new ProblemError(400, "The cursor is not one this service handed out.", [
          { field: "cursor", message: "unknown cursor" },
        ]);
      }
      after = part;
    }
    if (!isUlid(id) || !await jobs.getJob(id)) throw noSuchJob(id);
    const page = await jobs.listItems(id, { state, limit, after });
    return c.json({
      items: page.items.map(({ index, item }) => itemView(index, item)),
      nextCursor: encodeCursor(page.last),
    }, 200);
  };

  return { getJob, listJobItems };
}

import type { RouteHandler } from "@hono/zod-openapi";
import { JobActions } from "../services/job_ops/job_actions.ts";
import { isUlid } from "../services/store/ids.ts";
import type { AppDeps } from "./deps.ts";
import type { CancelJobRoute, RetryJobRoute } from "./job_actions.routes.ts";
import { ProblemError } from "./problem.ts";
import { jobView } from "./views.ts";

const noSuchJob = (id: string) => new ProblemError(404, `No job has the id '${id}'.`);

export function jobActionHandlers(deps: AppDeps) {
  const actions = new JobActions(deps.jobs, { useQueue: !deps.config.kvIsRemote });

  const retryJob: RouteHandler<RetryJobRoute> = async (c) => {
    const { id } = c.req.valid("param");
    const result = isUlid(id) ? await actions.retry(id) : { kind: "not_found" as const };
    if (result.kind === "not_found") throw noSuchJob(id);
    if (result.kind === "running") {
      throw new ProblemError(
        409,
        `Job '${id}' is still running (${result.snapshot.counts.pending} URLs pending): ` +
          "retry it once it has ended.",
      );
    }
    if (result.requeued > 0) deps.onJobCreated?.(id);
    return c.json(jobView(result.snapshot), 202);
  };

  const cancelJob: RouteHandler<CancelJobRoute> = async (c) => {
    const { id } = c.req.valid("param");
    const result = isUlid(id) ? await actions.cancel(id) : { kind: "not_found" as const };
    if (result.kind === "not_found") throw noSuchJob(id);
    if (result.kind === "finished") {
      throw new ProblemError(409, `Job '${id}' has already ended: nothing to cancel.`);
    }
    // A pump of this process stops starting the job's downloads at once.
    deps.onJobCreated?.(id);
    return c.json(jobView(result.snapshot), 202);
  };

  return { retryJob, cancelJob };
}

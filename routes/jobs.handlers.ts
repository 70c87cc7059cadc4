import type { RouteHandler } from "@hono/zod-openapi";
import { decodePosition } from "../services/jobs/event_position.ts";
import { JobEvents } from "../services/jobs/job_events.ts";
import { jobLists } from "../services/jobs/job_lists.ts";
import { type ResultsFormat, resultsStream } from "../services/jobs/results_file.ts";
import { isUlid } from "../services/store/ids.ts";
import { JobReads } from "../services/store/job_reads.ts";
import { decodeCursor, encodeCursor } from "../services/store/page.ts";
import type { AppDeps } from "./deps.ts";
import type {
  GetJobRoute,
  JobEventsRoute,
  JobResultsCsvRoute,
  JobResultsNdjsonRoute,
  ListJobItemsRoute,
  ListJobsRoute,
} from "./jobs.routes.ts";
import { ProblemError } from "./problem.ts";
import { JOB_LISTS_MAX } from "./schemas.ts";
import { contentUrl, itemView, jobView } from "./views.ts";

const noSuchJob = (id: string) => new ProblemError(404, `No job has the id '${id}'.`);

const unknownCursor = () =>
  new ProblemError(400, "The cursor is not one this service handed out.", [
    { field: "cursor", message: "unknown cursor" },
  ]);

/** Least time between two looks at a job by one event stream: at most 4 progress events a second. */
const EVENTS_MIN_INTERVAL_MS = 250;

/** Event streams for an app, from its settings. */
export function jobEventsFor(deps: AppDeps): JobEvents {
  return new JobEvents(new JobReads(deps.jobs.kv, deps.jobs.keys), {
    heartbeatMs: deps.config.eventsHeartbeatMs,
    pollMs: deps.config.eventsPollMs,
    minIntervalMs: EVENTS_MIN_INTERVAL_MS,
    summarize: jobView,
    closing: deps.closing,
  });
}

export function jobHandlers(deps: AppDeps) {
  const { jobs } = deps;
  const reads = new JobReads(jobs.kv, jobs.keys);
  const events = deps.jobEvents ?? jobEventsFor(deps);

  const getJob: RouteHandler<GetJobRoute> = async (c) => {
    const { id } = c.req.valid("param");
    const snap = isUlid(id) ? await jobs.get(id) : null;
    if (!snap) throw noSuchJob(id);
    const view = jobView(snap);
    if (snap.job.total > JOB_LISTS_MAX) return c.json(view, 200);
    return c.json({ ...view, ...await jobLists(reads, id, JOB_LISTS_MAX) }, 200);
  };

  const listJobs: RouteHandler<ListJobsRoute> = async (c) => {
    const { limit, cursor } = c.req.valid("query");
    let before: string | undefined;
    if (cursor !== undefined) {
      const part = decodeCursor(cursor);
      if (typeof part !== "string" || !isUlid(part)) throw unknownCursor();
      before = part;
    }
    const page = await reads.listJobs(limit, before);
    return c.json({
      items: page.snapshots.map(jobView),
      nextCursor: encodeCursor(page.last),
    }, 200);
  };

  const listJobItems: RouteHandler<ListJobItemsRoute> = async (c) => {
    const { id } = c.req.valid("param");
    const { state, limit, cursor } = c.req.valid("query");
    let after: number | undefined;
    if (cursor !== undefined) {
      const part = decodeCursor(cursor);
      if (typeof part !== "number") throw unknownCursor();
      after = part;
    }
    if (!isUlid(id) || !await jobs.getJob(id)) throw noSuchJob(id);
    const page = await jobs.listItems(id, { state, limit, after });
    return c.json({
      items: page.items.map(({ index, item }) => itemView(index, item)),
      nextCursor: encodeCursor(page.last),
    }, 200);
  };

  const jobEvents: RouteHandler<JobEventsRoute> = async (c) => {
    const { id } = c.req.valid("param");
    const lastEventId = c.req.valid("header")["last-event-id"];
    const position = lastEventId === undefined ? null : decodePosition(lastEventId);
    if (lastEventId !== undefined && !position) {
      throw new ProblemError(400, "Last-Event-ID is not an event id this service sent.", [
        { field: "Last-Event-ID", message: "unknown event id" },
      ]);
    }
    const job = isUlid(id) ? await jobs.getJob(id) : null;
    if (!job) throw noSuchJob(id);
    // The client saw the end: 204 tells EventSource not to reconnect. (A job
    // retried since then has a new end to reach, so it streams again.)
    if (position?.ended && job.finished !== null) return c.body(null, 204);
    const body = events.stream(id, position);
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        // Proxies such as nginx would otherwise hold events back in a buffer.
        "x-accel-buffering": "no",
      },
    }) as never;
  };

  const results =
    (format: ResultsFormat) => async (c: Parameters<RouteHandler<JobResultsCsvRoute>>[0]) => {
      const { id } = c.req.valid("param");
      const job = isUlid(id) ? await jobs.getJob(id) : null;
      if (!job) throw noSuchJob(id);
      if (await reads.stillWritingItems(id)) {
        throw new ProblemError(
          409,
          `Job '${id}' was just submitted and its list is still being written: retry in a moment.`,
          undefined,
          undefined,
          { "retry-after": "1" },
        );
      }
      const type = format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";
      return new Response(resultsStream(reads, job, format, contentUrl), {
        headers: {
          "content-type": type,
          "content-disposition": `attachment; filename="job-${id}-results.${format}"`,
        },
      }) as never;
    };
  const jobResultsCsv: RouteHandler<JobResultsCsvRoute> = results("csv");
  const jobResultsNdjson: RouteHandler<JobResultsNdjsonRoute> = results("ndjson");

  return { getJob, listJobs, listJobItems, jobEvents, jobResultsCsv, jobResultsNdjson };
}

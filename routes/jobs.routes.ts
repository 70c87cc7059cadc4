import { createRoute, z } from "@hono/zod-openapi";
import { problem } from "./problem.ts";
import {
  Cursor,
  ItemStateQuery,
  JOB_LISTS_MAX,
  JobDetail,
  JobItemPage,
  JobPage,
  Limit,
} from "./schemas.ts";

export const JobIdParam = z.object({
  id: z.string().min(1).max(64).openapi({
    param: { name: "id", in: "path" },
    example: "01KAQ4Z3T7V6B6XG5N3W2R8M9C",
  }),
});

export const getJob = createRoute({
  method: "get",
  path: "/jobs/{id}",
  tags: ["Jobs"],
  summary: "Progress of a job",
  description: `The job's status and counts. A job of at most ${JOB_LISTS_MAX} URLs also ` +
    "lists them: `pending`, `complete`, and `failed` with each URL's reason.",
  request: { params: JobIdParam },
  responses: {
    200: {
      description: "The job and its counts (and lists, for a small job).",
      content: { "application/json": { schema: JobDetail } },
    },
    404: problem("No job has this id."),
  },
});

export const listJobItems = createRoute({
  method: "get",
  path: "/jobs/{id}/items",
  tags: ["Jobs"],
  summary: "The URLs of a job and their states",
  description: "Pages through the job's URLs in submission order. Failed URLs carry a `reason`.",
  request: {
    params: JobIdParam,
    query: z.object({
      state: ItemStateQuery.optional().openapi({ description: "Only URLs in this state." }),
      limit: Limit(100, 1000),
      cursor: Cursor,
    }),
  },
  responses: {
    200: {
      description: "One page of items.",
      content: { "application/json": { schema: JobItemPage } },
    },
    400: problem("A query parameter is invalid (including an unknown cursor)."),
    404: problem("No job has this id."),
  },
});

export const listJobs = createRoute({
  method: "get",
  path: "/jobs",
  tags: ["Jobs"],
  summary: "List jobs, newest first",
  request: { query: z.object({ limit: Limit(100, 1000), cursor: Cursor }) },
  responses: {
    200: {
      description: "One page of jobs with their status and counts.",
      content: { "application/json": { schema: JobPage } },
    },
    400: problem("A query parameter is invalid (including an unknown cursor)."),
  },
});

const eventStream = z.string().openapi({
  example: "retry: 2000\n\n" +
    "id: 0.-1.i.1.0\nevent: progress\n" +
    'data: {"status":"in-progress","total":2,"counts":{"pending":1,"complete":1,"failed":0}}\n\n',
});

export const jobEvents = createRoute({
  method: "get",
  path: "/jobs/{id}/events",
  tags: ["Jobs"],
  summary: "Follow a job live (Server-Sent Events)",
  description: "A `text/event-stream`. It starts with `retry: 2000`, then:\n" +
    "- `progress`: `{status, total, counts}`, once at the start and whenever they change " +
    "(at most about 4 a second);\n" +
    "- `failed`: `{index, url, reason, detail, line?}`, once per failed URL;\n" +
    "- `end`: the job summary (as `GET /jobs/{id}` without the lists) when the job has " +
    "ended (`finished` is set); the server then closes the stream.\n\n" +
    "A `: ping` comment goes out after 15 s without events. Every event has an `id`; " +
    "reconnecting with `Last-Event-ID` resumes after it, sending nothing twice and missing " +
    "nothing. Reconnecting after the `end` event answers `204`, which tells `EventSource` to " +
    "stop. Works whichever instance sharing the KV processes the job.",
  request: {
    params: JobIdParam,
    headers: z.object({
      "last-event-id": z.string().max(200).optional().openapi({
        description: "The `id` of the last event received, to resume after it.",
        example: "0.-1.i.1.0",
      }),
    }),
  },
  responses: {
    200: {
      description: "The event stream.",
      headers: z.object({
        "Cache-Control": z.string().openapi({ example: "no-cache" }),
      }),
      content: { "text/event-stream": { schema: eventStream } },
    },
    204: { description: "`Last-Event-ID` names the end event of a job that has ended." },
    400: problem("`Last-Event-ID` is not an id this service sent."),
    404: problem("No job has this id."),
  },
});

const RESULT_FIELDS = "`url`, `status`, `reason`, `attempts`, `content_url`, `sha256`, " +
  "`content_type`, `bytes`, `width`, `height`";

const resultsDescription = (format: string) =>
  `One ${format} per input item, in input order (for a text or CSV list, one per line that ` +
  "named a URL, repeats and invalid lines included). Streamed: it starts at once whatever " +
  "the job's size, and shows each item as it is when read. `content_url` is this service's " +
  "own link to the stored bytes, relative to it (`/images/content?url=...`); it and the " +
  "image fields are empty for items not stored.";

const resultsResponses = (type: string, description: string, example: string) => ({
  200: {
    description,
    headers: z.object({
      "Content-Disposition": z.string().openapi({
        example: 'attachment; filename="job-01KAQ4Z3T7V6B6XG5N3W2R8M9C-results.csv"',
      }),
    }),
    content: { [type]: { schema: z.string().openapi({ example }) } },
  },
  404: problem("No job has this id."),
  409: {
    ...problem(
      "The job's list is still being written (a large list, just submitted): retry after " +
        "`Retry-After` seconds.",
    ),
    headers: z.object({ "Retry-After": z.string().openapi({ example: "1" }) }),
  },
});

export const jobResultsCsv = createRoute({
  method: "get",
  path: "/jobs/{id}/results.csv",
  tags: ["Jobs"],
  summary: "A job's results as CSV",
  description: resultsDescription("row") + "\n\nColumns: for a CSV list, its own columns " +
    `first (named by its header row, else \`column_1\`...), then ${RESULT_FIELDS}. RFC 4180 ` +
    "(quoted where needed, CRLF line ends). A cell that starts with `=`, `+`, `-`, `@`, a " +
    "tab or a carriage return gets a leading `'`, so spreadsheets do not run it as a formula.",
  request: { params: JobIdParam },
  responses: resultsResponses(
    "text/csv",
    "The results, as CSV with a header row.",
    "url,status,reason,attempts,content_url,sha256,content_type,bytes,width,height\r\n" +
      "https://images.example.com/cats/42.jpg,complete,,1," +
      "/images/content?url=https%3A%2F%2Fimages.example.com%2Fcats%2F42.jpg," +
      "9f2c6a1e0d4b5c7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e,image/jpeg,40213,640,480\r\n",
  ),
});

export const jobResultsNdjson = createRoute({
  method: "get",
  path: "/jobs/{id}/results.ndjson",
  tags: ["Jobs"],
  summary: "A job's results as NDJSON",
  description: resultsDescription("line (a JSON object)") + ` Fields: ${RESULT_FIELDS} ` +
    "(null where empty), `detail` (why it failed), `line` (text and CSV lists) and `columns` " +
    "(a CSV list's fields for that line, as sent).",
  request: { params: JobIdParam },
  responses: resultsResponses(
    "application/x-ndjson",
    "The results, one JSON object per line.",
    '{"url":"https://images.example.com/cats/42.jpg","status":"failed","reason":"http_404",' +
      '"detail":"origin answered 404","attempts":1,"content_url":null,"sha256":null,' +
      '"content_type":null,"bytes":null,"width":null,"height":null}\n',
  ),
});

export type GetJobRoute = typeof getJob;
export type ListJobsRoute = typeof listJobs;
export type JobEventsRoute = typeof jobEvents;
export type JobResultsCsvRoute = typeof jobResultsCsv;
export type JobResultsNdjsonRoute = typeof jobResultsNdjson;
export type ListJobItemsRoute = typeof listJobItems;

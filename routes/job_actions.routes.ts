import { createRoute, z } from "@hono/zod-openapi";
import { JobIdParam } from "./jobs.routes.ts";
import { problem } from "./problem.ts";
import { Job } from "./schemas.ts";

export const retryJob = createRoute({
  method: "post",
  path: "/jobs/{id}/retry",
  tags: ["Jobs"],
  summary: "Queue a job's failed URLs again",
  description: "Puts every failed URL of an ended job back to pending and starts the job again " +
    "(`status` goes back to `in-progress`, `finished` to null). Attempt counts continue from " +
    "where they were. URLs that failed as `invalid_url` when the list was submitted stay " +
    "failed: no download can fix them. A cancelled job is resumed: its `cancelled` URLs are " +
    "queued too. A job with nothing to retry is returned unchanged. Failures of the same URL " +
    "recorded before the retry no longer settle the job's items: each is downloaded again.",
  request: { params: JobIdParam },
  responses: {
    202: {
      description: "The failed URLs are queued again; the job as it is now.",
      content: { "application/json": { schema: Job } },
    },
    404: problem("No job has this id."),
    409: problem("The job is still running (some URLs are pending): retry once it has ended."),
  },
});

export const cancelJob = createRoute({
  method: "delete",
  path: "/jobs/{id}",
  tags: ["Jobs"],
  summary: "Cancel a job",
  description: "Stops the job: URLs not yet being downloaded fail with reason `cancelled` " +
    "(never downloaded), downloads already in flight finish and keep their outcome, and the " +
    "job's `status` becomes `cancelled` at once (`finished` is stamped after the last " +
    "download in flight). Every instance sharing the KV stops starting the job's downloads. " +
    "Repeating the request returns the cancelled job again. `POST /jobs/{id}/retry` resumes " +
    "a cancelled job.",
  request: { params: JobIdParam },
  responses: {
    202: {
      description: "The job is cancelled; downloads in flight may still be finishing.",
      content: { "application/json": { schema: Job } },
    },
    404: problem("No job has this id."),
    409: problem("The job has already ended (every URL stored or failed): nothing to cancel."),
  },
});

/** The request the service sends to a job's `callback_url` (an OpenAPI 3.1 webhook). */
export const jobEndedWebhook = {
  method: "post" as const,
  path: "jobEnded",
  tags: ["Jobs"],
  summary: "A job ended (sent to its callback_url)",
  description: "Sent when a job submitted with `callback_url` ends (complete, or cancelled " +
    "once its downloads in flight finished), and again each time a retried job ends. Signed " +
    "per Standard Webhooks with `WEBHOOK_SECRET`. Any 2xx answer is a delivery; anything " +
    "else, a timeout or a connection error is retried with exponential backoff " +
    "(`WEBHOOK_RETRIES`, `WEBHOOK_RETRY_BASE_MS`). Redirects are not followed.",
  request: {
    headers: z.object({
      "webhook-id": z.string().openapi({
        description: "The event's id, the same on every attempt: drop repeats by it.",
        example: "msg_01KAQ4Z9M1X2Y3Z4A5B6C7D8E9",
      }),
      "webhook-timestamp": z.string().openapi({
        description: "When this attempt was signed, in Unix seconds.",
        example: "1795459640",
      }),
      "webhook-signature": z.string().openapi({
        description: "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}." +
          "{body}` under the secret (the bytes after `whsec_`, base64-decoded, or the UTF-8 " +
          "bytes of a plain secret).",
        example: "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
      }),
    }),
    body: {
      content: {
        "application/json": {
          schema: z.object({
            type: z.enum(["job.completed", "job.cancelled"]),
            timestamp: z.string().openapi({ format: "date-time" }),
            data: Job,
          }).openapi("JobEndedEvent"),
        },
      },
    },
  },
  responses: {
    200: { description: "Any 2xx: delivered." },
  },
};

export type RetryJobRoute = typeof retryJob;
export type CancelJobRoute = typeof cancelJob;

import { jobSummary } from "../job_ops/summary.ts";
import { ulid } from "../store/ids.ts";
import type { JobEndHook, JobSnapshot } from "../store/jobs_repo.ts";
import type { Keys } from "../store/kv_keys.ts";

/**
 * A webhook waiting to be delivered. Written in the commit that ends the
 * job (so an ended job always has its delivery, across crashes), deleted
 * once a receiver answered 2xx or the retries ran out.
 */
export interface WebhookDelivery {
  /** The `webhook-id`: the same on every attempt, so receivers can drop repeats. */
  id: string;
  jobId: string;
  url: string;
  /** The JSON body, fixed when the job ended. */
  body: string;
  /** Attempts made so far. */
  attempts: number;
  /** Not before this time (epoch ms): the backoff after a failed attempt. */
  nextAt: number;
  /** The sender holding it until then (a lease: at-least-once, never two at once). */
  leaseOwner?: string;
  leaseUntil?: number;
  lastError?: string;
}

/** The event body: Standard Webhooks' recommended envelope around the job summary. */
export function webhookBody(ended: JobSnapshot, now = Date.now()): string {
  const data = jobSummary(ended);
  return JSON.stringify({
    type: data.status === "cancelled" ? "job.cancelled" : "job.completed",
    timestamp: new Date(now).toISOString(),
    data,
  });
}

/** The hook for `finalizeIfDone`: a job with a `callbackUrl` gets its delivery in the ending commit. */
export function outboxOnEnd(keys: Keys): JobEndHook {
  return (op, ended) => {
    const { job } = ended;
    if (!job.callbackUrl) return;
    const now = Date.now();
    const delivery: WebhookDelivery = {
      id: `msg_${ulid()}`,
      jobId: job.id,
      url: job.callbackUrl,
      body: webhookBody(ended, now),
      attempts: 0,
      nextAt: now,
    };
    op.set(keys.webhookDelivery(delivery.id), delivery);
  };
}

import type { JobRecord } from "./records.ts";

/**
 * The `expireIn` a write of one of the job's keys must carry. A KV `set`
 * without `expireIn` removes an expiry, and items are re-set on every
 * claim and finish, so every write passes the time the job has left.
 * Undefined for jobs recorded before expiry existed (the sweep ages them).
 */
export function ttlOf(job: Pick<JobRecord, "expiresAt">, now = Date.now()) {
  if (job.expiresAt === undefined) return undefined;
  return { expireIn: Math.max(1, job.expiresAt - now) };
}

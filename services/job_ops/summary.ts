import type { JobSnapshot } from "../store/jobs_repo.ts";
import type { JobRecord } from "../store/records.ts";

export type JobStatus = "pending" | "in-progress" | "complete" | "cancelled";

/**
 * The status a client sees. `cancelled` from the moment of the cancel
 * (downloads in flight may still finish; `finished` is stamped after the
 * last one). Otherwise complete only once `finished` is stamped, so a
 * client never sees "complete" with `finished: null`.
 */
export function jobStatus(job: JobRecord, counts: JobSnapshot["counts"]): JobStatus {
  if (job.cancelled !== undefined) return "cancelled";
  if (job.finished !== null) return "complete";
  return counts.complete + counts.failed > 0 || job.started !== null ? "in-progress" : "pending";
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The job summary as `GET /jobs/{id}` shows it; also the `data` of a webhook. */
export function jobSummary({ job, counts }: JobSnapshot) {
  return {
    id: job.id,
    status: jobStatus(job, counts),
    created: iso(job.created),
    finished: job.finished === null ? null : iso(job.finished),
    total: job.total,
    counts,
  };
}

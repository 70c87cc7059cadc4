import { commitInBatches } from "../store/kv_bulk.ts";
import { type JobsRepo, jobTreeDeletes } from "../store/jobs_repo.ts";
import type { JobRecord } from "../store/records.ts";

/** When a job expires: its own `expiresAt`, or `created` + the TTL for jobs recorded before it. */
export function expiryOf(job: JobRecord, ttlMs: number): number {
  return Math.min(job.expiresAt ?? Infinity, job.created + ttlMs);
}

/**
 * Deletes jobs past their expiry with everything under them (items, state
 * index, counters, markers, intake leftovers). KV's `expireIn` removes
 * most of it on its own, but only about once a minute, and not the
 * counters (a `sum` drops a key's expiry) nor keys of jobs recorded before
 * expiry existed: this is the sweep for what is left. Stored images stay.
 *
 * Job ids are ULIDs, so jobs list oldest first and the scan stops at the
 * first job still within the TTL. Returns how many jobs were deleted.
 */
export async function deleteExpiredJobs(
  jobs: JobsRepo,
  ttlMs: number,
  now = Date.now(),
): Promise<number> {
  const { kv, keys } = jobs;
  let deleted = 0;
  for await (const e of kv.list<JobRecord>({ prefix: keys.jobs() }, { batchSize: 100 })) {
    const job = e.value;
    if (expiryOf(job, ttlMs) > now) break;
    await deleteJob(jobs, job.id);
    deleted++;
  }
  return deleted;
}

/** Everything a job has in KV, the job record last: a crash midway leaves it for the next sweep. */
async function deleteJob(jobs: JobsRepo, jobId: string): Promise<void> {
  const { kv, keys } = jobs;
  const mutations = await jobTreeDeletes(kv, keys, jobId);
  for (
    const key of [
      keys.jobCount(jobId, "complete"),
      keys.jobCount(jobId, "failed"),
      keys.activeJob(jobId),
      keys.jobIntake(jobId),
      keys.creatingJob(jobId),
    ]
  ) mutations.push({ type: "delete", key, size: 80 });
  await commitInBatches(kv, mutations);
  await kv.delete(keys.job(jobId));
}

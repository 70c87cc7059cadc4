import type { JobReads } from "../store/job_reads.ts";
import { apiState } from "../store/jobs_repo.ts";

/** A small job's URLs by state, as the uploader service this one replaces reported them. */
export interface JobLists {
  pending: string[];
  complete: string[];
  failed: { url: string; reason: string; detail: string }[];
}

/** Reads every item of a job of at most `max` items (one list call). */
export async function jobLists(reads: JobReads, jobId: string, max: number): Promise<JobLists> {
  const lists: JobLists = { pending: [], complete: [], failed: [] };
  const { items } = await reads.itemPage(jobId, max);
  for (const { item } of items) {
    const state = apiState(item.state);
    if (state === "failed") {
      lists.failed.push({ url: item.url, reason: item.reason ?? "", detail: item.detail ?? "" });
    } else {
      lists[state].push(item.url);
    }
  }
  return lists;
}

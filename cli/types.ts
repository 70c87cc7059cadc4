/** The shapes the CLI reads from the service's HTTP answers (its public contract, not its code). */

export type JobStatus = "pending" | "in-progress" | "complete" | "cancelled";

export interface Counts {
  pending: number;
  complete: number;
  failed: number;
}

/** `GET /jobs/{id}`, the `202` of `POST /images`, and the data of the `end` event. */
export interface JobSummary {
  id: string;
  status: JobStatus;
  total: number;
  counts: Counts;
  created?: string;
  finished?: string | null;
}

/** The data of a `progress` event. */
export interface ProgressData {
  status: JobStatus;
  total: number;
  counts: Counts;
}

/** The data of a `failed` event, or a failed entry of `GET /jobs/{id}/items`. */
export interface FailedItem {
  index: number;
  url: string;
  reason: string;
  detail?: string;
  line?: number;
}

/** A job no longer moves once it is in one of these. */
export function isFinal(status: JobStatus): boolean {
  return status === "complete" || status === "cancelled";
}

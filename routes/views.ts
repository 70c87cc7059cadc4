import { jobStatus } from "../services/job_ops/summary.ts";
import type { JobSnapshot } from "../services/store/jobs_repo.ts";
import { apiState } from "../services/store/jobs_repo.ts";
import type { ImageRecord, ItemRecord } from "../services/store/records.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/** The public shape of a job. */
export function jobView({ job, counts }: JobSnapshot) {
  const status = jobStatus(job, counts);
  return {
    id: job.id,
    status,
    created: iso(job.created),
    finished: job.finished === null ? null : iso(job.finished),
    total: job.total,
    counts,
  };
}

/** The public shape of one URL of a job. */
export function itemView(index: number, item: ItemRecord) {
  const state = apiState(item.state);
  return {
    index,
    url: item.url,
    state,
    attempts: item.attempts,
    // A pending item that is waiting to retry shows why its last attempt failed.
    ...(state !== "complete" && item.reason
      ? { reason: item.reason, detail: item.detail ?? "" }
      : {}),
    ...(state === "complete" && item.revalidated ? { revalidated: true } : {}),
  };
}

/** The link that serves an image's bytes, or one of its named variants. */
export const contentUrl = (url: string, variant?: string) =>
  `/images/content?url=${encodeURIComponent(url)}` +
  (variant === undefined ? "" : `&variant=${encodeURIComponent(variant)}`);

/** The link that serves bytes by their hash. */
export const blobUrl = (sha256: string) => `/blobs/${sha256}`;

/** The public shape of a stored image. */
export function imageView(r: ImageRecord) {
  return {
    url: r.url,
    contentType: r.contentType,
    bytes: r.bytes,
    width: r.width,
    height: r.height,
    sha256: r.sha256,
    storedAt: iso(r.storedAt),
    checkedAt: iso(r.checkedAt ?? r.storedAt),
    etag: r.caching?.etag ?? null,
    lastModified: r.caching?.lastModified ?? null,
    cacheControl: r.caching?.cacheControl ?? null,
    expires: r.caching?.expires ?? null,
    contentUrl: contentUrl(r.url),
    origin: r.origin ?? "download",
    blobUrl: blobUrl(r.sha256),
    variants: (r.variants ?? []).map((v) => ({ ...v, contentUrl: contentUrl(r.url, v.name) })),
  };
}

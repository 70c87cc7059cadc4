/**
 * Every Deno KV key the service uses, in one place so the layout reads at a
 * glance. All keys start with a namespace (only "default" for now; per-API-key
 * namespaces come later). URLs are keyed by their SHA-256 because a URL may be
 * longer than KV's 2 KiB key limit.
 *
 *   [ns, "jobs", jobId]                              -> JobRecord
 *   [ns, "job_counts", jobId, "complete"|"failed"]   -> Deno.KvU64 (only grows)
 *   [ns, "job_items", jobId, index]                  -> ItemRecord
 *   [ns, "job_items_by_state", jobId, state, index]  -> null (pending|complete|failed)
 *   [ns, "active_jobs", jobId]                       -> null while a job has work left
 *   [ns, "creating_jobs", jobId]                     -> epoch ms, while POST writes the items
 *   [ns, "job_intake", jobId]                        -> IntakeProgress, while a large list's items are still being written
 *   [ns, "job_intake_chunks", jobId, n]              -> IntakeChunk (a large list as submitted, until materialised)
 *   [ns, "job_repeats", jobId, line]                 -> RepeatRecord (a text/CSV line repeating an earlier URL)
 *   [ns, "idempotency_keys", key]                    -> IdempotencyRecord (expires after 24 h)
 *   [ns, "webhook_outbox", deliveryId]               -> WebhookDelivery (a job ended; until delivered or given up)
 *   [ns, "images", urlHash]                          -> ImageRecord
 *   [ns, "images_by_seq", seq]                       -> ImageRecord (same commit as above)
 *   [ns, "url_leases", urlHash]                      -> UrlLease (one download per URL at a time)
 *   [ns, "url_failures", urlHash]                    -> UrlFailure (expires)
 *
 * Blob bookkeeping has no namespace: identical bytes are stored once for
 * everyone, so their reference counts are shared too.
 *
 *   ["blobs", "refs", sha256]                        -> Deno.KvU64: index and derivative entries referring to the bytes
 *   ["blobs", "marks", sha256]                       -> CollectionMark (since the count last fell to 0)
 *   ["blobs", "collect", sha256]                     -> null: bytes to look at for collection (active work only)
 *   ["blobs", "derivatives", sourceSha256, paramsKey] -> DerivativeRecord (a transform of the source, cached)
 */

export type ItemIndexState = "pending" | "complete" | "failed";
export type CountedState = "complete" | "failed";

export const DEFAULT_NAMESPACE = "default";

export function keys(ns: string = DEFAULT_NAMESPACE) {
  return {
    job: (jobId: string) => [ns, "jobs", jobId],
    jobs: () => [ns, "jobs"],
    jobCount: (jobId: string, state: CountedState) => [ns, "job_counts", jobId, state],
    item: (jobId: string, index: number) => [ns, "job_items", jobId, index],
    itemsOf: (jobId: string) => [ns, "job_items", jobId],
    itemByState: (jobId: string, state: ItemIndexState, index: number) => [
      ns,
      "job_items_by_state",
      jobId,
      state,
      index,
    ],
    itemsByState: (
      jobId: string,
      state: ItemIndexState,
    ) => [ns, "job_items_by_state", jobId, state],
    itemStatesOf: (jobId: string) => [ns, "job_items_by_state", jobId],
    activeJob: (jobId: string) => [ns, "active_jobs", jobId],
    activeJobs: () => [ns, "active_jobs"],
    creatingJob: (jobId: string) => [ns, "creating_jobs", jobId],
    creatingJobs: () => [ns, "creating_jobs"],
    jobIntake: (jobId: string) => [ns, "job_intake", jobId],
    jobIntakeChunk: (jobId: string, n: number) => [ns, "job_intake_chunks", jobId, n],
    jobIntakeChunksOf: (jobId: string) => [ns, "job_intake_chunks", jobId],
    jobRepeat: (jobId: string, line: number) => [ns, "job_repeats", jobId, line],
    jobRepeatsOf: (jobId: string) => [ns, "job_repeats", jobId],
    idempotencyKey: (key: string) => [ns, "idempotency_keys", key],
    webhookDelivery: (deliveryId: string) => [ns, "webhook_outbox", deliveryId],
    webhookOutbox: () => [ns, "webhook_outbox"],
    image: (urlHash: string) => [ns, "images", urlHash],
    images: () => [ns, "images"],
    imageBySeq: (seq: string) => [ns, "images_by_seq", seq],
    imagesBySeq: () => [ns, "images_by_seq"],
    urlLease: (urlHash: string) => [ns, "url_leases", urlHash],
    urlFailure: (urlHash: string) => [ns, "url_failures", urlHash],
  } satisfies Record<string, (...args: never[]) => Deno.KvKey>;
}

export type Keys = ReturnType<typeof keys>;

/** Keys shared by every namespace: see the layout above. */
export function blobKeys() {
  return {
    refs: (sha256: string) => ["blobs", "refs", sha256],
    allRefs: () => ["blobs", "refs"],
    mark: (sha256: string) => ["blobs", "marks", sha256],
    allMarks: () => ["blobs", "marks"],
    toCollect: (sha256: string) => ["blobs", "collect", sha256],
    allToCollect: () => ["blobs", "collect"],
    derivative: (sourceSha: string, paramsKey: string) => [
      "blobs",
      "derivatives",
      sourceSha,
      paramsKey,
    ],
    derivativesOf: (sourceSha: string) => ["blobs", "derivatives", sourceSha],
    allDerivatives: () => ["blobs", "derivatives"],
  } satisfies Record<string, (...args: never[]) => Deno.KvKey>;
}

export type BlobKeys = ReturnType<typeof blobKeys>;

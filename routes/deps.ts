import type { BlobStore } from "../services/blobs/blob_store.ts";
import type { BlobCollector } from "../services/blobs/collector.ts";
import type { Config } from "../services/config.ts";
import type { ImageContent } from "../services/image_content.ts";
import type { Intake } from "../services/intake/intake.ts";
import type { JobEvents } from "../services/jobs/job_events.ts";
import type { Service } from "../services/service.ts";
import type { BlobRefs } from "../services/store/blob_refs.ts";
import type { DerivativesRepo } from "../services/store/derivatives_repo.ts";
import type { ImagesRepo } from "../services/store/images_repo.ts";
import type { JobsRepo } from "../services/store/jobs_repo.ts";
import type { ImageUploads } from "../services/upload/uploads.ts";
import type { Transforms } from "../services/transform/transforms.ts";

/** What the HTTP layer needs, built by the caller so tests can pass their own. */
export interface AppDeps {
  config: Config;
  jobs: JobsRepo;
  images: ImagesRepo;
  intake: Intake;
  uploads: ImageUploads;
  content: ImageContent;
  blobs: BlobStore;
  /** Blob reference counts: bytes are served by hash only while something refers to them. */
  refs: BlobRefs;
  /** Deletes bytes a removal left unreferenced. */
  collector: BlobCollector;
  /** Cached transforms of stored blobs. */
  derivatives: DerivativesRepo;
  /** Image transforms (sharp loads on first use; without it they answer 501). Absent: 501. */
  transforms?: Transforms | null;
  /** Called after a job is recorded: the in-process worker starts at once instead of waiting for the queue. */
  onJobCreated?: (jobId: string) => void;
  /** Job event streams; made from `jobs` and `config` when absent (tests pass one to count open streams). */
  jobEvents?: JobEvents;
  /** Aborted when the process stops: long-lived answers (event streams) end so shutdown need not wait. */
  closing?: AbortSignal;
  /** Answers the health check: true when storage and KV respond. */
  healthy?: () => Promise<boolean>;
}

/** The parts of a running service the HTTP layer uses (callers add the rest). */
export function serviceDeps(s: Service) {
  return {
    config: s.config,
    jobs: s.jobs,
    images: s.images,
    intake: s.intake,
    uploads: s.uploads,
    content: s.content,
    blobs: s.blobs,
    refs: s.refs,
    collector: s.collector,
    derivatives: s.derivatives,
    transforms: s.transforms,
    healthy: s.healthy,
  } satisfies Partial<AppDeps>;
}

import { BlobCache } from "./blobs/blob_cache.ts";
import { BlobCollector } from "./blobs/collector.ts";
import { DiskBlobStore } from "./blobs/disk_blob_store.ts";
import type { Config } from "./config.ts";
import { createFetcher, type Fetcher } from "./fetch/fetcher.ts";
import { ImageContent } from "./image_content.ts";
import { BlobRefs } from "./store/blob_refs.ts";
import { DerivativesRepo } from "./store/derivatives_repo.ts";
import { IdempotencyRepo } from "./store/idempotency_repo.ts";
import { ImagesRepo } from "./store/images_repo.ts";
import { Intake } from "./intake/intake.ts";
import { JobWriter } from "./intake/job_writer.ts";
import { DnsResolver } from "./net/resolver.ts";
import { JobsRepo } from "./store/jobs_repo.ts";
import { KvBatcher } from "./store/kv_batcher.ts";
import { keys } from "./store/kv_keys.ts";
import { type SharpImporter, SharpLoader } from "./transform/sharp_loader.ts";
import { Transforms } from "./transform/transforms.ts";
import { createWebhookDeliverer } from "./webhooks/setup.ts";
import { ImageUploads } from "./upload/uploads.ts";
import { Worker } from "./worker/worker.ts";

/** Everything the running service is made of, wired once from its configuration. */
export interface Service {
  config: Config;
  kv: Deno.Kv;
  blobs: DiskBlobStore;
  jobs: JobsRepo;
  images: ImagesRepo;
  /** Blob reference counts, shared by every namespace. */
  refs: BlobRefs;
  /** Deletes bytes nothing refers to any more. */
  collector: BlobCollector;
  /** Cached transforms of stored blobs. */
  derivatives: DerivativesRepo;
  intake: Intake;
  /** Bytes sent by clients (form uploads, PUT). */
  uploads: ImageUploads;
  content: ImageContent;
  /** Image transforms; sharp is loaded on the first one (they answer 501 without it). */
  transforms: Transforms;
  fetcher: Fetcher;
  worker: Worker;
  /** True when KV and blob storage answer. */
  healthy(): Promise<boolean>;
  /** Stops the worker (with the configured grace) and closes KV. */
  close(): Promise<void>;
}

/**
 * Opens KV and storage and builds the repos, fetcher and worker. Starts
 * nothing: callers start the worker and the server when they are ready.
 */
export async function openService(
  config: Config,
  opts: { importSharp?: SharpImporter } = {},
): Promise<Service> {
  await Deno.mkdir(config.dataDir, { recursive: true });
  const kv = await Deno.openKv(config.kvPath);
  const blobs = new DiskBlobStore(config.dataDir);
  const useQueue = !config.kvIsRemote;
  const k = keys();
  const cache = new BlobCache(config.contentCacheBytes, config.contentCacheItemBytes);
  const refs = new BlobRefs(kv);
  const collector = new BlobCollector(kv, refs, blobs, (sha256) => cache.delete(sha256));
  // Collections started after a commit run in the background; close() waits
  // for them (a queued one left by a crash is finished by the next sweep).
  const collecting = new Set<Promise<unknown>>();
  const collect = (sha256: string) => {
    const run = collector.collect(sha256).catch((err) =>
      console.error(`collector: ${sha256}: ${(err as Error).message}`)
    ).finally(() => collecting.delete(run));
    collecting.add(run);
  };
  const images = new ImagesRepo(kv, k, {
    refs,
    blobs,
    recentMs: config.indexCacheMs,
    onFreed: collect,
  });
  const derivatives = new DerivativesRepo(kv, refs, blobs);
  const content = new ImageContent(blobs, cache);
  const jobs = new JobsRepo(kv, k, images, useQueue);
  const transforms = new Transforms({
    sharp: new SharpLoader(opts.importSharp, (reason) => {
      console.warn(`image transforms unavailable (they answer 501): ${reason}`);
    }),
    blobs,
    content,
    derivatives,
    concurrency: config.transformConcurrency,
    queueLimit: config.transformQueue,
    maxPixels: config.fetch.maxImagePixels,
  });
  const fetcher = createFetcher(config.fetch, { blobs });
  const idempotency = new IdempotencyRepo(kv, k);
  const intake = new Intake(
    new JobWriter(kv, k, images, idempotency, useQueue, undefined, config.jobTtlMs),
    jobs,
    idempotency,
    { secret: config.webhookSecret, policy: config.fetch.policy, resolver: new DnsResolver() },
  );
  const uploads = new ImageUploads(blobs, images, {
    maxImageBytes: config.fetch.maxImageBytes,
    maxImagePixels: config.fetch.maxImagePixels,
  });
  const webhooks = createWebhookDeliverer(config, kv, k);
  const worker = new Worker({
    kv,
    webhooks: webhooks?.deliverer,
    jobTtlMs: config.jobTtlMs,
    batcher: new KvBatcher(kv),
    jobs,
    images,
    fetcher,
    blobs,
    useQueue,
    materialise: (jobId) => intake.materialise(jobId),
    collector,
    // Each variant's failure (a source that cannot be transformed) shows when it is asked for.
    variants: async (source, specs) => {
      await transforms.ensureVariants(source, specs);
    },
    concurrency: config.workerConcurrency,
    perHostConcurrency: config.perHostConcurrency,
    sweepIntervalMs: config.sweepIntervalMs,
    leaseMs: config.leaseMs,
    retries: config.retries,
    retryBaseMs: config.retryBaseMs,
    retryAfterCapMs: config.retryAfterCapMs,
  });
  let closed = false;
  return {
    config,
    kv,
    blobs,
    jobs,
    images,
    refs,
    collector,
    derivatives,
    intake,
    uploads,
    content,
    transforms,
    fetcher,
    worker,
    async healthy() {
      await kv.get(k.job("healthz"));
      await Deno.stat(config.dataDir);
      return true;
    },
    async close() {
      if (closed) return;
      closed = true;
      await worker.stop(config.shutdownGraceMs);
      await Promise.all(collecting);
      webhooks?.close();
      fetcher.close();
      blobs.close();
      kv.close();
    },
  };
}

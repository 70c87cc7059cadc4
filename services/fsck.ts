import type { BlobStore } from "./blobs/blob_store.ts";
import type { ImagesRepo } from "./store/images_repo.ts";

/** What a consistency check of index and storage found (and, with repair, fixed). */
export interface FsckReport {
  indexEntries: number;
  blobs: number;
  /** Index entries whose blob is missing or has the wrong size. */
  brokenEntries: { url: string; sha256: string; problem: "missing" | "size_mismatch" }[];
  /** Blobs no index entry points at. */
  orphanBlobs: string[];
  /** Orphans left alone because a download may be about to index them. */
  youngOrphans: number;
  repaired: boolean;
}

/**
 * Compares the URL index with blob storage. With `repair`, broken entries are
 * removed (their URLs can be submitted again) and orphan blobs deleted, except
 * blobs younger than `minOrphanAgeMs`: a running worker commits the blob just
 * before its index entry.
 */
export async function fsck(
  images: ImagesRepo,
  blobs: BlobStore,
  opts: { repair: boolean; minOrphanAgeMs?: number; now?: number },
): Promise<FsckReport> {
  const minAge = opts.minOrphanAgeMs ?? 10 * 60 * 1000;
  const now = opts.now ?? Date.now();
  const referenced = new Set<string>();
  const report: FsckReport = {
    indexEntries: 0,
    blobs: 0,
    brokenEntries: [],
    orphanBlobs: [],
    youngOrphans: 0,
    repaired: opts.repair,
  };
  for await (const { urlHash, record } of images.all()) {
    report.indexEntries++;
    const stat = await blobs.stat(record.sha256);
    if (!stat || stat.bytes !== record.bytes) {
      report.brokenEntries.push({
        url: record.url,
        sha256: record.sha256,
        problem: stat ? "size_mismatch" : "missing",
      });
      if (opts.repair) await images.remove(urlHash);
      if (opts.repair && stat) await blobs.delete(record.sha256);
      continue;
    }
    referenced.add(record.sha256);
  }
  for await (const sha256 of blobs.list()) {
    report.blobs++;
    if (referenced.has(sha256)) continue;
    const stat = await blobs.stat(sha256);
    if (stat?.modified && now - stat.modified.getTime() < minAge) {
      report.youngOrphans++;
      continue;
    }
    report.orphanBlobs.push(sha256);
    if (opts.repair) await blobs.delete(sha256);
  }
  return report;
}

/** True when storage and index agree. */
export const isClean = (r: FsckReport) =>
  r.brokenEntries.length === 0 && r.orphanBlobs.length === 0;

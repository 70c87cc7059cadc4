import type { BlobStore } from "./blobs/blob_store.ts";
import type { BlobCollector } from "./blobs/collector.ts";
import type { BlobRefs } from "./store/blob_refs.ts";
import type { ImagesRepo } from "./store/images_repo.ts";
import type { DerivativeRecord } from "./store/records.ts";

/** What a consistency check of index, reference counts and storage found (and, with repair, fixed). */
export interface FsckReport {
  indexEntries: number;
  derivatives: number;
  blobs: number;
  /** Index entries whose blob is missing or has the wrong size. */
  brokenEntries: { url: string; sha256: string; problem: "missing" | "size_mismatch" }[];
  /** Derivative entries whose bytes are missing or whose source nothing refers to. */
  strayDerivatives: {
    source: string;
    paramsKey: string;
    sha256: string;
    problem: "missing" | "source_unreferenced";
  }[];
  /** Blobs whose stored reference count is not the number of entries referring to them. */
  countMismatches: { sha256: string; stored: number; expected: number }[];
  /** Blobs nothing refers to. */
  orphanBlobs: string[];
  /** Orphans left alone because a download may be about to index them. */
  youngOrphans: number;
  /** Unreferenced blobs queued for the collector (work in progress, not damage). */
  queuedCollections: number;
  repaired: boolean;
}

export interface FsckDeps {
  kv: Deno.Kv;
  images: ImagesRepo;
  blobs: BlobStore;
  refs: BlobRefs;
  collector: BlobCollector;
}

/**
 * Compares the URL index, the derivative entries and the blob reference
 * counts with blob storage. With `repair`: broken entries and stray
 * derivatives are removed (their URLs can be submitted again), counts are
 * set to what the entries say, and unreferenced blobs are collected, except
 * blobs younger than `minOrphanAgeMs`: a running worker commits the blob
 * just before its index entry. Run it with the service stopped for an
 * exact answer; while it runs, work in flight may show as young orphans.
 */
export async function fsck(
  deps: FsckDeps,
  opts: { repair: boolean; minOrphanAgeMs?: number; now?: number },
): Promise<FsckReport> {
  const { kv, images, blobs, refs } = deps;
  const minAge = opts.minOrphanAgeMs ?? 10 * 60 * 1000;
  const now = opts.now ?? Date.now();
  const report: FsckReport = {
    indexEntries: 0,
    derivatives: 0,
    blobs: 0,
    brokenEntries: [],
    strayDerivatives: [],
    countMismatches: [],
    orphanBlobs: [],
    youngOrphans: 0,
    queuedCollections: 0,
    repaired: opts.repair,
  };
  const expected = new Map<string, number>();
  const bump = (sha: string) => expected.set(sha, (expected.get(sha) ?? 0) + 1);
  const sizes = new Map<string, number | null>();
  const sizeOf = async (sha: string) => {
    if (!sizes.has(sha)) sizes.set(sha, (await blobs.stat(sha))?.bytes ?? null);
    return sizes.get(sha)!;
  };
  const broken: string[] = [];
  // The default namespace holds every image until tenants exist.
  for await (const { urlHash, record } of images.all()) {
    report.indexEntries++;
    bump(record.sha256);
    const size = await sizeOf(record.sha256);
    if (size !== record.bytes) {
      report.brokenEntries.push({
        url: record.url,
        sha256: record.sha256,
        problem: size === null ? "missing" : "size_mismatch",
      });
      broken.push(urlHash);
    }
  }
  const derivatives: Deno.KvEntry<DerivativeRecord>[] = [];
  for await (const e of kv.list<DerivativeRecord>({ prefix: refs.keys.allDerivatives() })) {
    report.derivatives++;
    bump(e.value.sha256);
    derivatives.push(e);
  }
  const strays: Deno.KvEntry<DerivativeRecord>[] = [];
  for (const e of derivatives) {
    const [, , source, paramsKey] = e.key as string[];
    const problem = !expected.has(source)
      ? "source_unreferenced"
      : await sizeOf(e.value.sha256) !== e.value.bytes
      ? "missing"
      : null;
    if (problem === null) continue;
    report.strayDerivatives.push({ source, paramsKey, sha256: e.value.sha256, problem });
    strays.push(e);
  }
  const stored = new Map<string, Deno.KvEntry<Deno.KvU64>>();
  for await (const e of kv.list<Deno.KvU64>({ prefix: refs.keys.allRefs() })) {
    stored.set(e.key.at(-1) as string, e);
  }
  for (const sha of new Set([...expected.keys(), ...stored.keys()])) {
    const have = Number(stored.get(sha)?.value.value ?? 0n);
    const want = expected.get(sha) ?? 0;
    if (have !== want) report.countMismatches.push({ sha256: sha, stored: have, expected: want });
  }
  for await (const _ of kv.list({ prefix: refs.keys.allToCollect() })) report.queuedCollections++;
  const orphans: string[] = [];
  for await (const sha256 of blobs.list()) {
    report.blobs++;
    if (expected.has(sha256)) continue;
    const stat = await blobs.stat(sha256);
    if (stat?.modified && now - stat.modified.getTime() < minAge) {
      report.youngOrphans++;
      continue;
    }
    report.orphanBlobs.push(sha256);
    orphans.push(sha256);
  }
  if (opts.repair) await repair(deps, report, broken, strays, orphans);
  return report;
}

/** Applies the fixes for what `fsck` found; counts first, so removals start from true counts. */
async function repair(
  { kv, images, refs, collector }: FsckDeps,
  report: FsckReport,
  broken: string[],
  strays: Deno.KvEntry<DerivativeRecord>[],
  orphans: string[],
): Promise<void> {
  for (const { sha256, expected } of report.countMismatches) {
    const op = kv.atomic();
    if (expected > 0) op.set(refs.keys.refs(sha256), new Deno.KvU64(BigInt(expected)));
    else op.delete(refs.keys.refs(sha256));
    await op.commit();
    if (expected === 0) await refs.requestCollection(sha256);
  }
  for (const urlHash of broken) {
    const removed = await images.remove(urlHash);
    if (removed?.freed) await collector.collect(removed.freed);
  }
  for (const e of strays) {
    const count = await refs.countEntry(e.value.sha256);
    const op = kv.atomic().check(e).delete(e.key);
    const last = refs.addUnref(op, e.value.sha256, count);
    if ((await op.commit()).ok && last) await collector.collect(e.value.sha256);
  }
  for (const sha256 of orphans) await refs.requestCollection(sha256);
  await collector.sweep();
}

/** True when storage, index and counts agree. */
export const isClean = (r: FsckReport) =>
  r.brokenEntries.length === 0 && r.orphanBlobs.length === 0 &&
  r.countMismatches.length === 0 && r.strayDerivatives.length === 0;

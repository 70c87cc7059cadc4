/**
 * Filtered listings of stored images. A request reads a bounded number of
 * index entries, so a filtered page may hold fewer matches than asked (even
 * none) while more follow: the cursor says where the scan stopped, and the
 * listing ends only when it is null.
 */
import type { ImageFormat } from "../image/types.ts";
import type { ImagesRepo } from "./images_repo.ts";
import type { JobsRepo } from "./jobs_repo.ts";
import type { ImageRecord } from "./records.ts";

/** Most index entries one filtered page reads. */
export const SCAN_BUDGET = 1000;

export interface ImageFilter {
  format?: ImageFormat;
  /** Only images stored at or after this time (epoch ms). */
  since?: number;
  /** Only the images of this job's completed URLs. */
  jobId?: string;
}

export interface FoundPage {
  items: ImageRecord[];
  /** Where the next page resumes (a sequence number, or an item index with `jobId`), or null. */
  last: string | number | null;
}

const matches = (r: ImageRecord, f: ImageFilter) =>
  (f.format === undefined || r.format === f.format) &&
  (f.since === undefined || r.storedAt >= f.since);

/**
 * One page of images matching `filter`, oldest first (in job order with
 * `jobId`). `after` is the previous page's `last`: a sequence number
 * without `jobId`, an item index with it.
 */
export async function findImages(
  images: ImagesRepo,
  jobs: JobsRepo,
  filter: ImageFilter,
  limit: number,
  after?: string | number,
  scanBudget = SCAN_BUDGET,
): Promise<FoundPage> {
  const filtered = filter.format !== undefined || filter.since !== undefined ||
    filter.jobId !== undefined;
  const budget = filtered ? Math.max(limit, scanBudget) : limit;
  let scanned: {
    records: (ImageRecord | null)[];
    positions: (string | number)[];
    last: FoundPage["last"];
  };
  if (filter.jobId !== undefined) {
    const page = await jobs.listItems(filter.jobId, {
      state: "complete",
      limit: budget,
      after: after as number | undefined,
    });
    scanned = {
      records: await images.getMany(page.items.map((i) => i.item.urlHash)),
      positions: page.items.map((i) => i.index),
      last: page.last,
    };
  } else {
    const page = await images.list(budget, after as string | undefined);
    scanned = { records: page.items, positions: page.items.map((r) => r.seq), last: page.last };
  }
  const items: ImageRecord[] = [];
  for (let i = 0; i < scanned.records.length; i++) {
    const record = scanned.records[i];
    if (!record || !matches(record, filter)) continue;
    items.push(record);
    // Full before the scan ended: resume right after this match.
    if (items.length === limit && (i < scanned.records.length - 1 || scanned.last !== null)) {
      return { items, last: scanned.positions[i] };
    }
  }
  return { items, last: scanned.last };
}

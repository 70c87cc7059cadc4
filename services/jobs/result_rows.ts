/**
 * The rows of a job's results file: one per input item, in input order.
 * For text and CSV lists that is line order: the job's items (one per
 * distinct URL, numbered in order of first appearance) merged with the
 * lines that repeated an earlier URL, which show that URL's outcome with
 * their own CSV fields. Read a page at a time, so a 100,000-row file never
 * sits whole in memory.
 */
import type { JobReads } from "../store/job_reads.ts";
import { apiState } from "../store/jobs_repo.ts";
import type { ItemIndexState } from "../store/kv_keys.ts";
import type { ImageRecord, ItemRecord, JobRecord } from "../store/records.ts";

export interface ResultRow {
  url: string;
  status: ItemIndexState;
  reason: string | null;
  detail: string | null;
  attempts: number;
  /** 1-based line in a text or CSV list. */
  line?: number;
  /** The CSV row's fields as sent. */
  columns?: string[];
  /** The stored image, for a complete item whose URL is in the index. */
  image: ImageRecord | null;
}

const PAGE = 500;

export async function* resultRows(reads: JobReads, job: JobRecord): AsyncGenerator<ResultRow> {
  const items = pages(async (after?: number) => {
    const page = await reads.itemPage(job.id, PAGE, after);
    const images = await imagesOf(reads, page.items.map((i) => i.item));
    return {
      rows: page.items.map(({ item }, n) => rowOf(item, images[n], item.columns)),
      last: page.last,
    };
  });
  // Only text and CSV lists have repeated lines (and line numbers to merge by).
  if (job.source !== "text" && job.source !== "csv") {
    yield* items;
    return;
  }
  const repeats = pages(async (after?: number) => {
    const page = await reads.repeatPage(job.id, PAGE, after);
    const repeated = await reads.items(job.id, page.repeats.map((r) => r.repeat.index));
    const images = await imagesOf(reads, repeated);
    const rows: ResultRow[] = [];
    page.repeats.forEach(({ line, repeat }, n) => {
      const item = repeated[n];
      if (item) rows.push({ ...rowOf(item, images[n], repeat.columns), line });
    });
    return { rows, last: page.last };
  });
  let a = await items.next();
  let b = await repeats.next();
  while (!a.done || !b.done) {
    if (b.done || (!a.done && (a.value.line ?? 0) <= (b.value.line ?? 0))) {
      yield a.value as ResultRow;
      a = await items.next();
    } else {
      yield b.value;
      b = await repeats.next();
    }
  }
}

/** Rows of successive pages, each read only when the previous one is used up. */
async function* pages(
  read: (after?: number) => Promise<{ rows: ResultRow[]; last: number | null }>,
): AsyncGenerator<ResultRow> {
  let after: number | undefined;
  for (;;) {
    const page = await read(after);
    yield* page.rows;
    if (page.last === null) return;
    after = page.last;
  }
}

function rowOf(
  item: ItemRecord,
  image: ImageRecord | null,
  columns: string[] | undefined,
): ResultRow {
  const status = apiState(item.state);
  return {
    url: item.url,
    status,
    reason: status !== "complete" && item.reason ? item.reason : null,
    detail: status !== "complete" && item.reason ? item.detail ?? "" : null,
    attempts: item.attempts,
    ...(item.line !== undefined ? { line: item.line } : {}),
    ...(columns ? { columns } : {}),
    image: status === "complete" ? image : null,
  };
}

/** The image records of the complete items among `items` (null elsewhere). */
async function imagesOf(
  reads: JobReads,
  items: (ItemRecord | null)[],
): Promise<(ImageRecord | null)[]> {
  const wanted = items.flatMap((item, n) => item?.state === "complete" ? [n] : []);
  const found = await reads.images(wanted.map((n) => items[n]!.urlHash));
  const out: (ImageRecord | null)[] = items.map(() => null);
  wanted.forEach((n, i) => (out[n] = found[i]));
  return out;
}

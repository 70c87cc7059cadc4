/**
 * A job's results as CSV or NDJSON, streamed: each read of the stream
 * formats the next rows (about 64 KiB), reading KV a page at a time, so the
 * first bytes go out at once and memory stays flat whatever the job's size.
 */
import type { JobReads } from "../store/job_reads.ts";
import type { JobRecord } from "../store/records.ts";
import { type ResultRow, resultRows } from "./result_rows.ts";

export type ResultsFormat = "csv" | "ndjson";

/** The service's own link to an image's bytes (or a variant of it), made by the caller (it knows the routes). */
export type ContentUrl = (url: string, variant?: string) => string;

export const RESULT_COLUMNS = [
  "url",
  "status",
  "reason",
  "attempts",
  "content_url",
  "sha256",
  "content_type",
  "bytes",
  "width",
  "height",
] as const;

/** Rows formatted before a chunk is handed on. */
const CHUNK_CHARS = 64 * 1024;
/** Rows read ahead to size the original CSV columns when there was no header. */
const PEEK_ROWS = 500;

export function resultsStream(
  reads: JobReads,
  job: JobRecord,
  format: ResultsFormat,
  contentUrl: ContentUrl,
): ReadableStream<Uint8Array> {
  const rows = resultRows(reads, job);
  const encoder = new TextEncoder();
  let formatRow: ((row: ResultRow) => string) | null = null;
  let peeked: ResultRow[] = [];
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let text = "";
      if (!formatRow) {
        const variants = (job.variants ?? []).map((v) => v.name);
        if (format === "ndjson") formatRow = (row) => ndjsonLine(row, contentUrl, variants);
        else {
          // The header needs the width of the original columns before the first row.
          const csv = job.source === "csv";
          while (csv && !job.csvHeader && peeked.length < PEEK_ROWS) {
            const next = await rows.next();
            if (next.done) break;
            peeked.push(next.value);
          }
          const width = csv
            ? Math.max(job.csvHeader?.length ?? 0, ...peeked.map((r) => r.columns?.length ?? 0))
            : 0;
          text += csvLine([
            ...originalColumnNames(job.csvHeader ?? [], width),
            ...RESULT_COLUMNS,
            ...variants.map((name) => `variant_${name}`),
          ]);
          formatRow = (row) => csvLine(csvCells(row, width, contentUrl, variants));
        }
      }
      for (const row of peeked) text += formatRow(row);
      peeked = [];
      while (text.length < CHUNK_CHARS) {
        const next = await rows.next();
        if (next.done) {
          if (text) controller.enqueue(encoder.encode(text));
          controller.close();
          return;
        }
        text += formatRow(next.value);
      }
      controller.enqueue(encoder.encode(text));
    },
    async cancel() {
      await rows.return(undefined);
    },
  });
}

/** The header's names, then `column_<n>` for fields beyond it. */
function originalColumnNames(header: string[], width: number): string[] {
  return Array.from({ length: width }, (_, i) => header[i] ?? `column_${i + 1}`);
}

/** Links to the job's variants the row's image keeps, by name. */
function variantLinks(row: ResultRow, contentUrl: ContentUrl, names: string[]) {
  const kept = new Set((row.image?.variants ?? []).map((v) => v.name));
  return names.map((name) => kept.has(name) ? contentUrl(row.url, name) : null);
}

function csvCells(
  row: ResultRow,
  width: number,
  contentUrl: ContentUrl,
  variants: string[],
): string[] {
  // Fields beyond the header's width are left out here, so the result columns
  // stay aligned (`results.ndjson` keeps them all).
  const original = row.columns ?? [];
  const img = row.image;
  return [
    ...Array.from({ length: width }, (_, i) => original[i] ?? ""),
    row.url,
    row.status,
    row.reason ?? "",
    String(row.attempts),
    img ? contentUrl(row.url) : "",
    img?.sha256 ?? "",
    img?.contentType ?? "",
    img ? String(img.bytes) : "",
    img ? String(img.width) : "",
    img ? String(img.height) : "",
    ...variantLinks(row, contentUrl, variants).map((link) => link ?? ""),
  ];
}

function ndjsonLine(row: ResultRow, contentUrl: ContentUrl, variants: string[]): string {
  const img = row.image;
  const links = variantLinks(row, contentUrl, variants);
  return JSON.stringify({
    url: row.url,
    status: row.status,
    reason: row.reason,
    detail: row.detail,
    attempts: row.attempts,
    content_url: img ? contentUrl(row.url) : null,
    sha256: img?.sha256 ?? null,
    content_type: img?.contentType ?? null,
    bytes: img?.bytes ?? null,
    width: img?.width ?? null,
    height: img?.height ?? null,
    ...(row.line !== undefined ? { line: row.line } : {}),
    ...(row.columns ? { columns: row.columns } : {}),
    ...(variants.length
      ? { variants: Object.fromEntries(variants.map((name, i) => [name, links[i]])) }
      : {}),
  }) + "\n";
}

/** Cells a spreadsheet would run as a formula start with one of these. */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV record (RFC 4180: quoted when needed, quotes doubled, CRLF).
 * A cell that would start a formula in a spreadsheet gets a leading `'`,
 * which spreadsheets show as text.
 */
export function csvLine(cells: readonly string[]): string {
  return cells.map(csvCell).join(",") + "\r\n";
}

export function csvCell(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** Reading the list to submit, judging its format, and the idempotency key that names it. */
import { createHash } from "node:crypto";
import { isAbsolute, resolve } from "node:path";
import type { ListFormat } from "./args.ts";
import { UsageError } from "./errors.ts";

export interface ListInput {
  bytes: Uint8Array;
  /** The file name as given, or undefined for standard input. */
  name?: string;
}

/**
 * `deno task` runs in the directory of deno.json and leaves the caller's
 * directory in INIT_CWD: relative paths the user typed are relative to that.
 */
export function userPath(path: string): string {
  if (isAbsolute(path)) return path;
  return resolve(Deno.env.get("INIT_CWD") ?? Deno.cwd(), path);
}

/** Reads the whole list: the idempotency key is a hash of it, needed before the body is sent. */
export async function readInput(path: string): Promise<ListInput> {
  if (path === "-") return { bytes: await new Response(Deno.stdin.readable).bytes() };
  try {
    return { bytes: await Deno.readFile(userPath(path)), name: path };
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
    throw new UsageError(`cannot read ${path}: ${why}`);
  }
}

const SAMPLE_LINES = 20;

/**
 * CSV or plain text. The file name decides when it says (`.csv`, `.txt`);
 * otherwise the content: a first row naming a `url`/`source_url` column,
 * or sample rows that all have the same number (at least one) of commas
 * outside quotes, as a table does. A URL list with a stray comma in a URL
 * stays text unless every sampled line has that many.
 */
export function detectFormat(input: ListInput, text: string): ListFormat {
  const ext = input.name?.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1];
  if (ext === "csv") return "csv";
  if (ext === "txt" || ext === "text" || ext === "list") return "text";
  const lines = text.split(/\r\n|\n|\r/).map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#")).slice(0, SAMPLE_LINES);
  if (lines.length === 0) return "text";
  const header = splitOutsideQuotes(lines[0]).map((f) =>
    f.trim().replace(/^"|"$/g, "").toLowerCase()
  );
  if (header.some((f) => f === "url" || f === "source_url")) return "csv";
  const widths = new Set(lines.map((l) => splitOutsideQuotes(l).length));
  return widths.size === 1 && !widths.has(1) ? "csv" : "text";
}

function splitOutsideQuotes(line: string): string[] {
  const fields: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '"') quoted = !quoted;
    else if (line[i] === "," && !quoted) {
      fields.push(line.slice(start, i));
      start = i + 1;
    }
  }
  fields.push(line.slice(start));
  return fields;
}

/** The media type each format is sent as. */
export function contentType(format: ListFormat): string {
  return format === "csv" ? "text/csv" : "text/plain";
}

/**
 * Same list, same server, same options: same key, so a re-run after a
 * network error gets the job the first run created instead of a second one
 * (the service keeps keys 24 hours). Anything that changes what the request
 * means is hashed in too, so a different request never reuses a key.
 */
export function idempotencyKey(
  server: string,
  format: ListFormat,
  refresh: boolean,
  bytes: Uint8Array,
): string {
  const hash = createHash("sha256");
  hash.update(`image-ingest cli v1\n${server}\n${contentType(format)}\nrefresh=${refresh}\n`);
  hash.update(bytes);
  return `cli-${hash.digest("hex")}`;
}

/**
 * Turns a `POST /images` request, whatever its format, into a list ready
 * to become a job and the fingerprint `Idempotency-Key` compares. Refusals
 * become problem answers here; the reading itself is in services/intake.
 */
import type { Context } from "hono";
import {
  BodyTooLargeError,
  type ListBody,
  readListBody,
  UnsupportedListError,
} from "../services/intake/body_reader.ts";
import { MAX_IDEMPOTENCY_KEY } from "../services/intake/intake.ts";
import type { NewJob } from "../services/intake/job_writer.ts";
import { ListError } from "../services/intake/list_parser.ts";
import { MultipartError } from "../services/intake/multipart.ts";
import { createHash } from "node:crypto";
import { ProblemError, validationProblem } from "./problem.ts";
import { CallbackUrl, SubmitBody } from "./schemas.ts";

const LIST_TYPES = new Set(["text/plain", "text/csv", "multipart/form-data"]);

export interface Submission {
  spec: NewJob;
  fingerprint: string;
}

/** The `Idempotency-Key` header, checked: 1 to 255 characters. */
export function idempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (header.length < 1 || header.length > MAX_IDEMPOTENCY_KEY) {
    const message = `must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`;
    throw new ProblemError(400, `The Idempotency-Key header ${message}.`, [
      { field: "Idempotency-Key", message },
    ]);
  }
  return header;
}

/**
 * Reads the body in the format it was sent. `jsonBody` is the validated JSON,
 * if JSON; its fingerprint is only worked out when `keyed` (list bodies are
 * hashed as they stream past anyway).
 */
export async function readSubmission(
  c: Context,
  jsonBody: unknown,
  keyed: boolean,
): Promise<Submission> {
  const contentType = c.req.header("content-type") ?? "";
  const type = contentType.split(";")[0].trim().toLowerCase();
  const query = new URL(c.req.url).search;
  if (type === "application/json") {
    const body = jsonBody as SubmitBody;
    const list = body.urls ??
      (typeof body.source_url === "string" ? [body.source_url] : body.source_url!);
    const urls = [...new Set(list)];
    return {
      spec: {
        entries: urls.map((url) => ({ url })),
        repeats: [],
        refresh: body.refresh ?? false,
        source: "json",
        ...(body.callback_url !== undefined ? { callbackUrl: body.callback_url } : {}),
        ...(body.variants?.length ? { variants: body.variants } : {}),
      },
      fingerprint: keyed
        ? createHash("sha256").update(`${type}\n${query}\n${JSON.stringify(body)}`).digest("hex")
        : "",
    };
  }
  if (!type) throw new ProblemError(400, "A request body (JSON, plain text or CSV) is required.");
  if (!LIST_TYPES.has(type)) {
    throw new ProblemError(
      415,
      `The content type ${type} is not accepted: send JSON, plain text, CSV or multipart/form-data.`,
    );
  }
  const read = await readList(contentType, c.req.raw.body, query);
  const fields = type === "multipart/form-data" ? read.fields : queryFields(c);
  const refresh = fields.get("refresh");
  if (refresh !== undefined && refresh !== "true" && refresh !== "false") {
    throw new ProblemError(400, "`refresh` must be true or false.", [
      { field: "refresh", message: "must be one of: true, false" },
    ]);
  }
  const callbackUrl = fields.get("callback_url");
  if (callbackUrl !== undefined) {
    const checked = CallbackUrl.safeParse(callbackUrl);
    if (!checked.success) throw validationProblem("request body", checked.error);
  }
  if (read.list.valid === 0) {
    const invalid = read.list.entries.slice(0, 50).map((e) => ({
      field: `line ${e.line}`,
      message: e.invalid!.replace(/^line \d+: /, ""),
    }));
    throw new ProblemError(400, "The list has no valid URL.", invalid.length ? invalid : undefined);
  }
  return {
    spec: {
      entries: read.list.entries,
      repeats: read.list.repeats,
      refresh: refresh === "true",
      source: read.format,
      ...(read.list.csvHeader ? { csvHeader: read.list.csvHeader } : {}),
      ...(callbackUrl !== undefined ? { callbackUrl } : {}),
    },
    fingerprint: read.fingerprint,
  };
}

/** `refresh` and `callback_url` from the query, already validated by the route. */
function queryFields(c: Context): Map<string, string> {
  const fields = new Map<string, string>();
  for (const name of ["refresh", "callback_url"]) {
    const value = c.req.query(name);
    if (value !== undefined) fields.set(name, value);
  }
  return fields;
}

async function readList(
  contentType: string,
  body: ReadableStream<Uint8Array> | null,
  query: string,
): Promise<ListBody> {
  try {
    return await readListBody(contentType, body, query);
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw new ProblemError(413, err.message);
    if (err instanceof UnsupportedListError) throw new ProblemError(415, err.message);
    if (err instanceof ListError) throw new ProblemError(400, err.message);
    if (err instanceof MultipartError) {
      throw new ProblemError(400, `Malformed multipart/form-data: ${err.message}.`);
    }
    throw err;
  }
}

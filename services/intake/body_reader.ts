/**
 * Reads a text, CSV or multipart list body as a stream: the bytes go
 * through the list parser as they arrive and into the request's
 * fingerprint (for `Idempotency-Key`), and the size limit is enforced on
 * the way. Free of HTTP frameworks: it sees a media type and a byte stream.
 */
import { createHash, type Hash } from "node:crypto";
import { ListError, type ListFormat, ListParser, type ParsedList } from "./list_parser.ts";
import {
  boundaryOf,
  MultipartError,
  type PartInfo,
  readMultipart,
  textField,
} from "./multipart.ts";

/** Largest text, CSV or multipart body. */
export const MAX_LIST_BODY_BYTES = 20 * 1024 * 1024;

/** Longest plain form field (`refresh`, `callback_url`). */
const MAX_FIELD_BYTES = 9 * 1024;

/** Form fields besides `file`. */
const FORM_FIELDS = new Set(["refresh", "callback_url"]);

/** The body is over the limit. */
export class BodyTooLargeError extends Error {}

/** A multipart `file` in a format that is not a list. */
export class UnsupportedListError extends Error {}

export interface ListBody {
  list: ParsedList;
  format: ListFormat;
  /** Plain form fields (multipart only). */
  fields: Map<string, string>;
  /** Hex SHA-256 over the media type, the body as read, and `query`. */
  fingerprint: string;
}

/**
 * Reads a `text/plain`, `text/csv` or `multipart/form-data` body. `query`
 * (the request's query string) is part of the fingerprint. Throws
 * ListError or MultipartError (unreadable), BodyTooLargeError or
 * UnsupportedListError.
 */
export async function readListBody(
  contentType: string,
  body: ReadableStream<Uint8Array> | null,
  query: string,
  maxBytes = MAX_LIST_BODY_BYTES,
): Promise<ListBody> {
  const mediaType = contentType.split(";")[0].trim().toLowerCase();
  const hash = createHash("sha256").update(`${mediaType}\n${query}\n`);
  const bytes = limited(body, maxBytes);
  if (mediaType === "multipart/form-data") {
    const boundary = boundaryOf(contentType);
    if (!boundary) throw new MultipartError("the content type names no boundary");
    return await readForm(bytes, boundary, hash);
  }
  const format: ListFormat = mediaType === "text/csv" ? "csv" : "text";
  const parser = new ListParser(format);
  for await (const chunk of bytes) {
    hash.update(chunk);
    parser.push(chunk);
  }
  return { list: parser.end(), format, fields: new Map(), fingerprint: hash.digest("hex") };
}

async function readForm(
  bytes: AsyncIterable<Uint8Array>,
  boundary: string,
  hash: Hash,
): Promise<ListBody> {
  let parser: ListParser | undefined;
  let list: ParsedList | undefined;
  const fields = new Map<string, string>();
  await readMultipart(bytes, boundary, (info: PartInfo) => {
    // Canonical over the parts, not the raw bytes: the boundary differs per upload.
    hash.update(`--${info.name}\n${info.filename ?? ""}\n${info.contentType ?? ""}\n`);
    if (info.name === "file") {
      if (parser) throw new ListError("The form has more than one `file` field.");
      parser = new ListParser(fileFormat(info));
      const p = parser;
      return {
        write: (b) => {
          hash.update(b);
          p.push(b);
        },
        end: () => {
          list = p.end();
        },
      };
    }
    if (!FORM_FIELDS.has(info.name)) {
      throw new ListError(
        `Unknown form field \`${info.name}\`: expected \`file\`, \`refresh\` or \`callback_url\`.`,
      );
    }
    if (fields.has(info.name)) throw new ListError(`The form field \`${info.name}\` is repeated.`);
    return textField(
      MAX_FIELD_BYTES,
      () => new ListError(`The form field \`${info.name}\` is too long.`),
      (text) => fields.set(info.name, text),
      (b) => hash.update(b),
    );
  });
  if (!list || !parser) throw new ListError("The form has no `file` field with the list.");
  return { list, format: parser.format, fields, fingerprint: hash.digest("hex") };
}

/** Text or CSV, by the part's content type, else its file name. */
function fileFormat(info: PartInfo): ListFormat {
  if (info.contentType === "text/csv") return "csv";
  if (info.contentType === "text/plain") return "text";
  // A plain form field (no file name, no type) holding the list as text.
  if (info.contentType === undefined && info.filename === undefined) return "text";
  const name = (info.filename ?? "").toLowerCase();
  if (name.endsWith(".csv")) return "csv";
  if (name.endsWith(".txt")) return "text";
  throw new UnsupportedListError(
    "The `file` part must be text/csv or text/plain (or a file named .csv or .txt).",
  );
}

/**
 * The body's chunks, failing with BodyTooLargeError once more than
 * `maxBytes` have come (leaving the loop cancels the rest of the body).
 */
export async function* limited(
  body: AsyncIterable<Uint8Array> | null,
  maxBytes: number,
): AsyncIterable<Uint8Array> {
  if (!body) return;
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) {
      throw new BodyTooLargeError(`The request body is larger than ${maxBytes} bytes.`);
    }
    yield chunk;
  }
}

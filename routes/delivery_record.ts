import type { ImageContent } from "../services/image_content.ts";
import type { ImageRecord } from "../services/store/records.ts";
import { deliver, type Representation } from "./delivery.ts";
import { epochSeconds, httpDate } from "./delivery_date.ts";
import { contentDisposition, downloadName } from "./delivery_filename.ts";

/**
 * Answers a GET or HEAD for the image stored under a URL. This is the one
 * place a transformed body is to be substituted: a transform builds its own
 * Representation from `record` (its ETag, size and type; the record's
 * Last-Modified) and its own opener, and delivers those instead, keeping
 * conditionals, ranges and headers as they are.
 */
export function serveRecord(
  req: Request,
  record: ImageRecord,
  content: ImageContent,
  cacheControl: string,
): Promise<Response> {
  return deliver(req, storedRepresentation(record, cacheControl), (r) => content.open(record, r));
}

// The index cache hands out the same record object for a while (INDEX_CACHE_MS):
// its headers are built once, not per request.
const built = new WeakMap<ImageRecord, Representation>();

/** The stored bytes of `record` as delivered under its URL. */
export function storedRepresentation(record: ImageRecord, cacheControl: string): Representation {
  const known = built.get(record);
  if (known && known.headers["Cache-Control"] === cacheControl) return known;
  const rep: Representation = {
    etag: `"${record.sha256}"`,
    modifiedSec: epochSeconds(record.storedAt),
    size: record.bytes,
    headers: {
      // Only raster types identified from the bytes are ever served, and
      // nosniff keeps browsers to that type.
      "Content-Type": record.contentType,
      ETag: `"${record.sha256}"`,
      "Last-Modified": httpDate(record.storedAt),
      // Configurable: a refresh can change what a URL answers.
      "Cache-Control": cacheControl,
      "Content-Disposition": contentDisposition(downloadName(record.url, record.format)),
      "X-Content-Type-Options": "nosniff",
      // Images are meant to be embedded by other sites.
      "Cross-Origin-Resource-Policy": "cross-origin",
    },
  };
  built.set(record, rep);
  return rep;
}

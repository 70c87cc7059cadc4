/**
 * The keys images are stored under: a URL to download from, or, for bytes
 * sent by a client, any `upload:` name (by default `upload:<sha256>`).
 */
import { MAX_URL_LENGTH, urlProblem } from "../intake/url_check.ts";

export const UPLOAD_KEY_PREFIX = "upload:";

/** Longest key, in UTF-8 bytes (a URL may be 8 KiB). */
export const MAX_KEY_BYTES = MAX_URL_LENGTH;

/** The key of uploaded bytes sent without one. */
export const defaultUploadKey = (sha256: string) => `${UPLOAD_KEY_PREFIX}${sha256}`;

/** True when the key names an origin to download from. */
export const isDownloadKey = (key: string) => /^https?:/i.test(key) && urlProblem(key) === null;

/** Why `key` cannot name an image, or null when it can. */
export function keyProblem(key: string): string | null {
  if (new TextEncoder().encode(key).length > MAX_KEY_BYTES) {
    return `longer than ${MAX_KEY_BYTES} bytes`;
  }
  if (key.startsWith(UPLOAD_KEY_PREFIX)) {
    // Printed in headers (Location) and listings: no spaces or control characters.
    return /^upload:[^\s\p{Cc}]+$/u.test(key)
      ? null
      : "an `upload:` key needs a name without spaces or control characters";
  }
  const problem = urlProblem(key);
  return problem === null ? null : `not an http(s) URL or an \`upload:\` key (${problem})`;
}

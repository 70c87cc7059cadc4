/**
 * `Content-Disposition: inline` with a file name for a stored image, so a
 * "save as" gets a sensible name. The name comes from the last segment of
 * the URL's path, percent-decoded; nothing in it is trusted: separators,
 * control and bidi characters become `_`, and the extension always names
 * the format served (identified from the bytes), so `index.php` that served
 * a PNG is saved as `index.png`.
 */
import type { ImageFormat } from "../services/image/types.ts";

/** Accepted extensions per format; the first is the one given when the name has none of them. */
const EXTENSIONS: Record<ImageFormat, readonly string[]> = {
  jpeg: ["jpg", "jpeg", "jpe", "jfif"],
  png: ["png"],
  gif: ["gif"],
  webp: ["webp"],
  avif: ["avif"],
  bmp: ["bmp", "dib"],
  tiff: ["tif", "tiff"],
  ico: ["ico"],
};

/** Most file systems allow 255 bytes per name: the stem keeps well under that. */
export const MAX_STEM_BYTES = 150;

// C0, DEL, C1, path separators, and the bidi controls that can disguise an extension.
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f/\\\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** What may stand after the last dot and still be an extension to replace. */
const EXTENSION_LIKE = /^[a-z0-9]{1,5}$/i;

/** The file name for an image stored under `url` and served as `format`. */
export function downloadName(url: string, format: ImageFormat): string {
  const segment = lastSegment(url).toWellFormed().replace(UNSAFE, "_");
  const dot = segment.lastIndexOf(".");
  const ext = dot >= 0 ? segment.slice(dot + 1).trim() : "";
  const known = EXTENSIONS[format];
  const keepExt = known.includes(ext.toLowerCase());
  // Whatever extension-like part there is gives way to the served format's.
  const stem = dot >= 0 && (keepExt || EXTENSION_LIKE.test(ext)) ? segment.slice(0, dot) : segment;
  return `${capped(stem) || "image"}.${keepExt ? ext : known[0]}`;
}

/** The header value: an ASCII `filename` for old clients, `filename*` (RFC 8187) when it differs. */
export function contentDisposition(name: string): string {
  // RFC 6266 D: no quotes, backslashes or `%` (some clients percent-decode
  // it) in the plain form; `;` too, for parsers that split on it.
  const ascii = name.replace(/[^\x20-\x7e]|["\\%;]/g, "_");
  const header = `inline; filename="${ascii}"`;
  return ascii === name ? header : `${header}; filename*=UTF-8''${encodeExtValue(name)}`;
}

function lastSegment(url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return "";
  }
  const raw = path.slice(path.lastIndexOf("/") + 1);
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // not UTF-8 once decoded: keep the escapes as they are
  }
}

/** Without dots or spaces at either end (no hidden files), at most MAX_STEM_BYTES of UTF-8. */
function capped(stem: string): string {
  stem = stem.replace(/^[\s.]+/, "");
  let bytes = 0;
  let out = "";
  for (const ch of stem) {
    bytes += ch.length === 2 ? 4 : ch.charCodeAt(0) < 0x80 ? 1 : ch.charCodeAt(0) < 0x800 ? 2 : 3;
    if (bytes > MAX_STEM_BYTES) break;
    out += ch;
  }
  return out.replace(/[\s.]+$/, "");
}

/** RFC 8187 value-chars: attr-char as is, every other UTF-8 byte as %XX. */
function encodeExtValue(name: string): string {
  return encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

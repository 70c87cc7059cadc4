/**
 * Identifies an image and its dimensions from the first bytes of a download.
 *
 * Only magic numbers count: file names and Content-Type headers are attacker-controlled.
 * The parsers read headers in place (no decoding, no copies), so calling this again on
 * every received chunk stays cheap.
 */
import type { ImageFormat, SniffResult } from "./types.ts";
import { notAnImage } from "./sniff/bytes.ts";
import { readAvif } from "./sniff/avif.ts";
import { readBmp } from "./sniff/bmp.ts";
import { readGif } from "./sniff/gif.ts";
import { readIco } from "./sniff/ico.ts";
import { readJpeg } from "./sniff/jpeg.ts";
import { readPng } from "./sniff/png.ts";
import { sniffMarkup } from "./sniff/svg.ts";
import { readTiff } from "./sniff/tiff.ts";
import { readWebp } from "./sniff/webp.ts";

export { CONTENT_TYPES } from "./sniff/bytes.ts";

/** A byte pattern at the start of the file; `null` matches any byte. */
type Pattern = readonly (number | null)[];

interface Signature {
  format: ImageFormat;
  patterns: readonly Pattern[];
  read: (head: Uint8Array, isComplete: boolean) => SniffResult;
}

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

// Order matters only for ISO BMFF before ICO: both may start 00 00 01 00.
const SIGNATURES: readonly Signature[] = [
  { format: "jpeg", patterns: [[0xff, 0xd8, 0xff]], read: readJpeg },
  { format: "png", patterns: [[0x89, ...ascii("PNG\r\n\x1a\n")]], read: readPng },
  { format: "gif", patterns: [ascii("GIF87a"), ascii("GIF89a")], read: readGif },
  {
    format: "webp",
    patterns: [[...ascii("RIFF"), null, null, null, null, ...ascii("WEBP")]],
    read: readWebp,
  },
  // ftyp sizes are small, hence the two zero bytes; the brands decide between AVIF and others.
  { format: "avif", patterns: [[0, 0, null, null, ...ascii("ftyp")]], read: readAvif },
  { format: "bmp", patterns: [ascii("BM")], read: readBmp },
  { format: "tiff", patterns: [ascii("II*\0"), ascii("MM\0*")], read: readTiff },
  { format: "ico", patterns: [[0, 0, 1, 0]], read: readIco },
];

/** "yes" if `head` starts with the pattern, "maybe" if it is a shorter prefix of it. */
function match(head: Uint8Array, pattern: Pattern): "yes" | "maybe" | "no" {
  const n = Math.min(head.length, pattern.length);
  for (let i = 0; i < n; i++) {
    if (pattern[i] !== null && pattern[i] !== head[i]) return "no";
  }
  return n === pattern.length ? "yes" : "maybe";
}

/** Short hex of the first bytes, to make rejections debuggable. */
function preview(head: Uint8Array): string {
  return [...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/**
 * Decides what `head`, the prefix of a download received so far, is.
 *
 * Returns `need_more` while `isComplete` is false and the bytes cannot settle the format or
 * the dimensions. Callers that stop waiting (e.g. after about 1 MiB) should call once more with
 * `isComplete: true`, which turns any remaining doubt into a `not_an_image` rejection.
 * SVG is rejected as `unsupported_format`, as are HEIC/HEIF files.
 */
export function sniffImage(head: Uint8Array, isComplete: boolean): SniffResult {
  if (head.length === 0) {
    return isComplete ? notAnImage("the body is empty") : { kind: "need_more" };
  }

  let found: Signature | undefined;
  let partial = false;
  for (const signature of SIGNATURES) {
    for (const pattern of signature.patterns) {
      const verdict = match(head, pattern);
      if (verdict === "yes") found ??= signature;
      else if (verdict === "maybe") partial = true;
    }
  }
  // A shorter signature may match while a longer one is still possible (ICO vs ISO BMFF).
  if (partial && !isComplete) return { kind: "need_more" };
  if (found) return found.read(head, isComplete);

  const markup = sniffMarkup(head, isComplete);
  if (markup.kind === "svg") {
    return { kind: "rejected", reason: "unsupported_format", detail: "SVG is not accepted" };
  }
  if (markup.kind === "undecided") return { kind: "need_more" };
  if (markup.root) {
    return notAnImage(`markup with root element <${markup.root}> is not an image`);
  }
  if (partial) return notAnImage(`${head.length} bytes are too few for any image header`);
  return notAnImage(`no known image signature (starts with ${preview(head)})`);
}

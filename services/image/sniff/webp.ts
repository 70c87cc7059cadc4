import type { SniffResult } from "../types.ts";
import { dimensions, fourcc, notAnImage, truncated, u16le, u24le, u32le } from "./bytes.ts";

/**
 * Reads a WebP's size from its first chunk: VP8 (lossy), VP8L (lossless) or VP8X (extended,
 * whose canvas size is what a decoder produces even for animations).
 */
export function readWebp(head: Uint8Array, isComplete: boolean): SniffResult {
  // "RIFF" size "WEBP", then the first chunk header (type, size) at 12, its payload at 20.
  if (head.length < 20) return truncated("webp", head, isComplete, "its first chunk");
  const chunk = fourcc(head, 12);
  if (chunk === "VP8 ") {
    // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
    if (head.length < 30) return truncated("webp", head, isComplete, "its VP8 frame header");
    const isKeyFrame = (head[20] & 1) === 0;
    if (!isKeyFrame || head[23] !== 0x9d || head[24] !== 0x01 || head[25] !== 0x2a) {
      return notAnImage("WebP VP8 chunk does not start with a key frame");
    }
    return dimensions("webp", u16le(head, 26) & 0x3fff, u16le(head, 28) & 0x3fff);
  }
  if (chunk === "VP8L") {
    // Signature byte 0x2f, then width-1 and height-1 packed as two 14-bit fields.
    if (head.length < 25) return truncated("webp", head, isComplete, "its VP8L header");
    if (head[20] !== 0x2f) return notAnImage("WebP VP8L chunk has a bad signature");
    const bits = u32le(head, 21);
    return dimensions("webp", (bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  }
  if (chunk === "VP8X") {
    // Flags (1) and reserved (3), then canvas width-1 and height-1 as 24-bit fields.
    if (head.length < 30) return truncated("webp", head, isComplete, "its VP8X header");
    return dimensions("webp", u24le(head, 24) + 1, u24le(head, 27) + 1);
  }
  return notAnImage(`WebP starts with an unknown chunk ${JSON.stringify(chunk)}`);
}

import type { SniffResult } from "../types.ts";
import { dimensions, notAnImage, truncated, u16be } from "./bytes.ts";

/** SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
    marker !== 0xcc;
}

/** Markers that stand alone, without a length field: TEM, RST0..7 and SOI. */
function isStandalone(marker: number): boolean {
  return marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8);
}

/**
 * Reads a JPEG's size from its frame header (SOFn).
 *
 * Segments before it (EXIF with thumbnails, ICC profiles, XMP, Photoshop data) can run to
 * hundreds of kilobytes, so this hops from segment to segment by their lengths and only ever
 * touches marker bytes; a prefix ending inside a segment simply needs more.
 */
export function readJpeg(head: Uint8Array, isComplete: boolean): SniffResult {
  const end = head.length;
  let pos = 2; // past SOI
  for (;;) {
    // Like libjpeg, tolerate stray bytes and fill bytes (runs of 0xff) before a marker.
    while (pos < end && head[pos] !== 0xff) pos++;
    while (pos < end && head[pos] === 0xff) pos++;
    if (pos >= end) return truncated("jpeg", head, isComplete, "its frame header (SOF)");
    const marker = head[pos++];
    // 0x00 after 0xff is byte stuffing, not a marker.
    if (marker === 0x00 || isStandalone(marker)) continue;
    if (marker === 0xd9 || marker === 0xda) {
      return notAnImage("JPEG has no frame header (SOF) before its image data");
    }
    if (pos + 2 > end) return truncated("jpeg", head, isComplete, "its frame header (SOF)");
    const length = u16be(head, pos);
    if (length < 2) return notAnImage("JPEG has a segment with an invalid length");
    if (isStartOfFrame(marker)) {
      // Length (2), sample precision (1), height (2), width (2).
      if (length < 8) return notAnImage("JPEG frame header is too short");
      if (pos + 7 > end) return truncated("jpeg", head, isComplete, "the end of its frame header");
      const height = u16be(head, pos + 3);
      if (height === 0) {
        return notAnImage("JPEG defers its height to a DNL marker, which is not supported");
      }
      return dimensions("jpeg", u16be(head, pos + 5), height);
    }
    pos += length;
  }
}

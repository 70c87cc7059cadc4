import type { SniffResult } from "../types.ts";
import { dimensions, notAnImage, truncated, u16le, u32le } from "./bytes.ts";

const BIT_COUNTS = new Set([0, 1, 2, 4, 8, 16, 24, 32]);

/**
 * Reads an ICO's size as that of its largest directory entry (0 in the directory means 256).
 *
 * "00 00 01 00" is a weak signature, so each entry must look plausible; entries are checked as
 * they arrive so that garbage is refused without waiting for a long directory.
 */
export function readIco(head: Uint8Array, isComplete: boolean): SniffResult {
  // Reserved (2), type 1 = icon (2), entry count (2), then 16-byte entries.
  if (head.length < 6) return truncated("ico", head, isComplete, "its image count");
  const count = u16le(head, 4);
  if (count === 0) return notAnImage("ICO directory is empty");
  const directoryEnd = 6 + count * 16;

  let width = 0;
  let height = 0;
  for (let i = 0; i < count; i++) {
    const entry = 6 + i * 16;
    if (head.length < entry + 16) {
      return truncated("ico", head, isComplete, `directory entry ${i + 1} of ${count}`);
    }
    const planes = u16le(head, entry + 4);
    const bitCount = u16le(head, entry + 6);
    const size = u32le(head, entry + 8);
    const offset = u32le(head, entry + 12);
    if (planes > 1 || !BIT_COUNTS.has(bitCount) || size === 0 || offset < directoryEnd) {
      return notAnImage(`ICO directory entry ${i + 1} is not plausible`);
    }
    const w = head[entry] || 256;
    const h = head[entry + 1] || 256;
    if (w * h > width * height) {
      width = w;
      height = h;
    }
  }
  return dimensions("ico", width, height);
}

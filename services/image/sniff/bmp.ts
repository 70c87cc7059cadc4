import type { SniffResult } from "../types.ts";
import { dimensions, i32le, notAnImage, truncated, u16le, u32le } from "./bytes.ts";

// Known DIB header sizes: OS/2 1.x core (12), OS/2 2.x short form (16) and BITMAPINFOHEADER
// with its later extensions. "BM" alone is a weak signature, so anything else is refused.
const DIB_SIZES = new Set([12, 16, 40, 52, 56, 64, 108, 124]);
const BIT_DEPTHS = new Set([1, 2, 4, 8, 16, 24, 32, 64]);

/** Reads a BMP's size from its DIB header after checking that header looks genuine. */
export function readBmp(head: Uint8Array, isComplete: boolean): SniffResult {
  // File header: "BM", file size (4), reserved (4), pixel data offset (4); DIB size at 14.
  if (head.length < 18) return truncated("bmp", head, isComplete, "its DIB header");
  const dibSize = u32le(head, 14);
  if (!DIB_SIZES.has(dibSize)) return notAnImage(`BMP has an unknown DIB header size ${dibSize}`);
  const core = dibSize === 12;
  if (head.length < (core ? 26 : 30)) return truncated("bmp", head, isComplete, "its DIB header");

  const planes = core ? u16le(head, 22) : u16le(head, 26);
  const bitsPerPixel = core ? u16le(head, 24) : u16le(head, 28);
  if (planes !== 1) return notAnImage(`BMP declares ${planes} colour planes`);
  if (!BIT_DEPTHS.has(bitsPerPixel)) return notAnImage(`BMP declares ${bitsPerPixel} bits/pixel`);
  if (u32le(head, 10) < 14 + dibSize) return notAnImage("BMP pixel data overlaps its headers");

  const width = core ? u16le(head, 18) : i32le(head, 18);
  // A negative height only means the rows are stored top-down.
  const height = core ? u16le(head, 20) : Math.abs(i32le(head, 22));
  return dimensions("bmp", width, height);
}

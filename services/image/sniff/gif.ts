import type { SniffResult } from "../types.ts";
import { dimensions, truncated, u16le } from "./bytes.ts";

/** Reads a GIF's size from its logical screen descriptor. */
export function readGif(head: Uint8Array, isComplete: boolean): SniffResult {
  // "GIF87a"/"GIF89a", then logical screen width and height, little-endian.
  if (head.length < 10) return truncated("gif", head, isComplete, "its logical screen descriptor");
  return dimensions("gif", u16le(head, 6), u16le(head, 8));
}

import type { SniffResult } from "../types.ts";
import { dimensions, fourcc, notAnImage, truncated, u32be } from "./bytes.ts";

/** Reads a PNG's size from its IHDR chunk, which the format requires to come first. */
export function readPng(head: Uint8Array, isComplete: boolean): SniffResult {
  // 8-byte signature, then IHDR: length (4), type (4), width (4), height (4).
  if (head.length < 24) return truncated("png", head, isComplete, "its IHDR chunk");
  if (u32be(head, 8) !== 13 || fourcc(head, 12) !== "IHDR") {
    // Apple's CgBI variant puts a chunk first and is not decodable by standard decoders.
    return notAnImage("PNG does not start with a valid IHDR chunk");
  }
  const width = u32be(head, 16);
  const height = u32be(head, 20);
  // The PNG spec caps both at 2^31 - 1.
  if (width > 0x7fffffff || height > 0x7fffffff) {
    return notAnImage(`PNG declares out-of-range dimensions ${width}x${height}`);
  }
  return dimensions("png", width, height);
}

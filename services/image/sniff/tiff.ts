import type { SniffResult } from "../types.ts";
import { dimensions, notAnImage, truncated, u16be, u16le, u32be, u32le } from "./bytes.ts";

const IMAGE_WIDTH = 256;
const IMAGE_LENGTH = 257;
const TYPE_SHORT = 3;
const TYPE_LONG = 4;

/**
 * Reads a TIFF's size from the first IFD. Many writers (libtiff among them) put that IFD after
 * the pixel data, so a large TIFF may only be sized once most of it has arrived.
 */
export function readTiff(head: Uint8Array, isComplete: boolean): SniffResult {
  if (head.length < 8) return truncated("tiff", head, isComplete, "its first IFD offset");
  const le = head[0] === 0x49;
  const u16 = le ? u16le : u16be;
  const u32 = le ? u32le : u32be;

  const ifd = u32(head, 4);
  if (ifd < 8) return notAnImage(`TIFF first IFD offset ${ifd} points into its header`);
  if (head.length < ifd + 2) return truncated("tiff", head, isComplete, `its IFD at ${ifd}`);
  const count = u16(head, ifd);
  if (count === 0) return notAnImage("TIFF first IFD is empty");
  if (head.length < ifd + 2 + count * 12) {
    return truncated("tiff", head, isComplete, `the end of its IFD at ${ifd}`);
  }

  let width = -1;
  let height = -1;
  for (let entry = ifd + 2; entry < ifd + 2 + count * 12; entry += 12) {
    const tag = u16(head, entry);
    if (tag !== IMAGE_WIDTH && tag !== IMAGE_LENGTH) continue;
    // Values of four bytes or fewer sit in the entry itself, left-justified.
    const type = u16(head, entry + 2);
    let value: number;
    if (type === TYPE_SHORT) value = u16(head, entry + 8);
    else if (type === TYPE_LONG) value = u32(head, entry + 8);
    else return notAnImage(`TIFF tag ${tag} has unexpected field type ${type}`);
    if (tag === IMAGE_WIDTH) width = value;
    else height = value;
  }
  if (width < 0 || height < 0) return notAnImage("TIFF first IFD lacks ImageWidth/ImageLength");
  return dimensions("tiff", width, height);
}

import type { SniffResult } from "../types.ts";
import { dimensions, fourcc, notAnImage, truncated, u16be, u32be } from "./bytes.ts";

const AVIF_BRANDS = new Set(["avif", "avis"]);
// HEIF-family brands (HEVC-coded HEIC and the generic HEIF structural brands).
const HEIF_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs"]);
const GENERIC_HEIF_BRANDS = new Set(["mif1", "msf1", "mif2"]);
/** Bigger ftyp boxes are not seen in practice; refusing them bounds the wait for brands. */
const MAX_FTYP_SIZE = 4096;

class CorruptBox extends Error {}

interface Box {
  type: string;
  /** Offset of the payload, after the size/type header. */
  body: number;
  /** Offset just past the box. */
  end: number;
}

/** The boxes laid end to end in `[start, end)`, which must hold them exactly. */
function* boxes(b: Uint8Array, start: number, end: number): Generator<Box> {
  let pos = start;
  while (pos + 8 <= end) {
    let size = u32be(b, pos);
    let body = pos + 8;
    if (size === 1) {
      if (pos + 16 > end) throw new CorruptBox("box header overruns its parent");
      size = u32be(b, pos + 8) * 2 ** 32 + u32be(b, pos + 12);
      body = pos + 16;
    } else if (size === 0) {
      size = end - pos; // extends to the end of its parent
    }
    if (size < body - pos || pos + size > end) throw new CorruptBox("box overruns its parent");
    yield { type: fourcc(b, pos + 4), body, end: pos + size };
    pos += size;
  }
}

/** Width and height from an `ispe` (image spatial extents) property. */
function readIspe(b: Uint8Array, box: Box): [number, number] {
  // FullBox version/flags (4), then width and height as 32-bit integers.
  if (box.end - box.body < 12) throw new CorruptBox("ispe box is too short");
  return [u32be(b, box.body + 4), u32be(b, box.body + 8)];
}

/** Property indices (1-based into ipco) associated with each item, from an `ipma` box. */
function readIpma(b: Uint8Array, box: Box): Map<number, number[]> {
  const version = b[box.body];
  const wideIndices = (b[box.body + 3] & 1) === 1;
  const result = new Map<number, number[]>();
  let pos = box.body + 4;
  const need = (n: number) => {
    if (pos + n > box.end) throw new CorruptBox("ipma box is truncated");
  };
  need(4);
  const entries = u32be(b, pos);
  pos += 4;
  for (let i = 0; i < entries; i++) {
    need(version < 1 ? 3 : 5);
    const item = version < 1 ? u16be(b, pos) : u32be(b, pos);
    pos += version < 1 ? 2 : 4;
    const count = b[pos++];
    need(count * (wideIndices ? 2 : 1));
    const indices: number[] = [];
    for (let j = 0; j < count; j++) {
      // The top bit flags an essential property; the rest is the index.
      if (wideIndices) {
        indices.push(u16be(b, pos) & 0x7fff);
        pos += 2;
      } else {
        indices.push(b[pos++] & 0x7f);
      }
    }
    result.set(item, indices);
  }
  return result;
}

/**
 * The size of the primary item, found through `pitm` and `ipma`; without those, the largest
 * `ispe` (the others being thumbnails, grid tiles or alpha planes of the same size).
 */
function readMeta(b: Uint8Array, meta: Box): SniffResult {
  let primary: number | undefined;
  const properties: Box[] = [];
  let associations = new Map<number, number[]>();
  // meta is a FullBox: version/flags precede its children.
  for (const box of boxes(b, meta.body + 4, meta.end)) {
    if (box.type === "pitm") {
      if (box.end - box.body < 6) throw new CorruptBox("pitm box is too short");
      primary = b[box.body] === 0 ? u16be(b, box.body + 4) : u32be(b, box.body + 4);
    } else if (box.type === "iprp") {
      for (const child of boxes(b, box.body, box.end)) {
        if (child.type === "ipco") properties.push(...boxes(b, child.body, child.end));
        else if (child.type === "ipma") associations = readIpma(b, child);
      }
    }
  }

  const primaryProps = primary === undefined ? undefined : associations.get(primary);
  if (primaryProps) {
    for (const index of primaryProps) {
      const prop = properties[index - 1];
      if (prop?.type === "ispe") return dimensions("avif", ...readIspe(b, prop));
    }
  }
  let best: [number, number] | undefined;
  for (const prop of properties) {
    if (prop.type !== "ispe") continue;
    const size = readIspe(b, prop);
    if (!best || size[0] * size[1] > best[0] * best[1]) best = size;
  }
  if (!best) return notAnImage("AVIF has no image size (ispe) property");
  return dimensions("avif", ...best);
}

/** Accepts AVIF among ISO BMFF files by its ftyp brands; refuses HEIC/HEIF and the rest. */
function checkBrands(head: Uint8Array, isComplete: boolean): SniffResult | undefined {
  const ftypSize = u32be(head, 0);
  if (ftypSize < 16 || ftypSize > MAX_FTYP_SIZE || ftypSize % 4 !== 0) {
    return notAnImage(`ISO BMFF ftyp box has an implausible size ${ftypSize}`);
  }
  const brands: string[] = [];
  // Major brand at 8, minor version at 12, compatible brands from 16.
  const available = Math.min(ftypSize, head.length);
  for (let at = 8; at + 4 <= available; at += at === 8 ? 8 : 4) brands.push(fourcc(head, at));
  if (brands.some((brand) => AVIF_BRANDS.has(brand))) return undefined;
  if (head.length < ftypSize) return truncated("avif", head, isComplete, "the end of its ftyp box");

  const list = brands.map((brand) => JSON.stringify(brand)).join(", ");
  if (brands.some((brand) => HEIF_BRANDS.has(brand) || GENERIC_HEIF_BRANDS.has(brand))) {
    return {
      kind: "rejected",
      reason: "unsupported_format",
      detail: `HEIC/HEIF is not accepted, only AVIF (brands ${list})`,
    };
  }
  return notAnImage(`ISO BMFF file is not an AVIF image (brands ${list})`);
}

/** Reads an AVIF's size from the `ispe` property of its primary item inside the `meta` box. */
export function readAvif(head: Uint8Array, isComplete: boolean): SniffResult {
  if (head.length < 12) return truncated("avif", head, isComplete, "its ftyp brand");
  const verdict = checkBrands(head, isComplete);
  if (verdict) return verdict;

  // Walk the top-level boxes after ftyp until meta, which is usually the next one.
  let pos = u32be(head, 0);
  for (;;) {
    if (pos + 8 > head.length) return truncated("avif", head, isComplete, "its meta box");
    let size = u32be(head, pos);
    const type = fourcc(head, pos + 4);
    let headerSize = 8;
    if (size === 1) {
      if (pos + 16 > head.length) return truncated("avif", head, isComplete, "its meta box");
      size = u32be(head, pos + 8) * 2 ** 32 + u32be(head, pos + 12);
      headerSize = 16;
    } else if (size === 0) {
      // The last box, running to the end of the file.
      if (type !== "meta") return notAnImage("AVIF has no meta box");
      if (!isComplete) return { kind: "need_more" };
      size = head.length - pos;
    }
    if (size < headerSize) return notAnImage(`AVIF has a corrupt ${JSON.stringify(type)} box`);
    if (type === "meta") {
      if (pos + size > head.length) {
        return truncated("avif", head, isComplete, "the end of its meta box");
      }
      try {
        return readMeta(head, { type, body: pos + headerSize, end: pos + size });
      } catch (error) {
        if (error instanceof CorruptBox) {
          return notAnImage(`AVIF meta is corrupt: ${error.message}`);
        }
        throw error;
      }
    }
    pos += size;
  }
}

/**
 * Byte-level builders for test images: hand-made BMP/ICO/PNG headers, and ways of growing a
 * real image to a target size with data decoders ignore (comments, metadata, free boxes).
 */

// Letters and digits only, so filler is harmless inside comments, XML and tEXt alike.
const ALPHANUMERIC = latin1("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");

/** Alphanumeric bytes, deterministic for a seed, that barely compress. */
export function filler(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(Math.max(0, length));
  const next = prng(seed);
  for (let i = 0; i < out.length; i++) out[i] = ALPHANUMERIC[next() % ALPHANUMERIC.length];
  return out;
}

/** A small fast deterministic generator of 32-bit unsigned integers (mulberry32). */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** ASCII/Latin-1 text as bytes. */
export function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function u16le(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff, (n >>> 8) & 0xff);
}

function u32le(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
}

function u32be(n: number): Uint8Array {
  return Uint8Array.of((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 as used by PNG chunks. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk with its length and CRC. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const typed = concat(latin1(type), data);
  return concat(u32be(data.length), typed, u32be(crc32(typed)));
}

const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

/**
 * A PNG whose IHDR claims `width`x`height` (8-bit RGB) but whose pixel data is an empty zlib
 * stream: sniffable, not decodable. For pixel-limit tests without allocating huge images.
 */
export function pngWithDimensions(width: number, height: number): Uint8Array {
  const ihdr = concat(u32be(width), u32be(height), Uint8Array.of(8, 2, 0, 0, 0));
  const emptyZlib = Uint8Array.of(0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01);
  return concat(
    PNG_SIGNATURE,
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", emptyZlib),
    pngChunk("IEND", new Uint8Array(0)),
  );
}

/** Adds a tEXt comment of about `extra` bytes before IEND. */
export function padPng(png: Uint8Array, extra: number, seed: number): Uint8Array {
  const text = concat(latin1("Comment\0"), filler(extra - 20, seed));
  const iend = png.length - 12;
  return concat(png.subarray(0, iend), pngChunk("tEXt", text), png.subarray(iend));
}

/** JPEG segments (marker + length + payload) carrying `total` payload bytes in all. */
function jpegSegments(
  marker: number,
  total: number,
  seed: number,
  prefix: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const segments: Uint8Array[] = [];
  for (let left = total; left > 0;) {
    const payload = Math.min(left, 65533);
    const body = concat(prefix, filler(payload - prefix.length, seed + left));
    segments.push(
      concat(Uint8Array.of(0xff, marker, (payload + 2) >> 8, (payload + 2) & 0xff), body),
    );
    left -= payload + 4;
  }
  return concat(...segments);
}

/** Offset of the first marker `wanted` in a JPEG, walking segments from SOI. */
function findJpegMarker(jpeg: Uint8Array, wanted: number): number {
  let pos = 2;
  while (pos + 4 <= jpeg.length && jpeg[pos] === 0xff) {
    if (jpeg[pos + 1] === wanted) return pos;
    pos += 2 + ((jpeg[pos + 2] << 8) | jpeg[pos + 3]);
  }
  throw new Error(`marker ff${wanted.toString(16)} not found`);
}

/** Adds COM segments of about `extra` bytes just before the scan, after the frame header. */
export function padJpeg(jpeg: Uint8Array, extra: number, seed: number): Uint8Array {
  const sos = findJpegMarker(jpeg, 0xda);
  return concat(jpeg.subarray(0, sos), jpegSegments(0xfe, extra, seed), jpeg.subarray(sos));
}

/**
 * Inserts about `bytes` of APPn segments right after SOI, as cameras and editors do (EXIF with
 * a thumbnail, XMP, ICC): the frame header with the dimensions moves that far back.
 */
export function jpegWithAppSegments(jpeg: Uint8Array, bytes: number, seed = 1): Uint8Array {
  // A minimal valid EXIF block (empty IFD0) so that EXIF readers are not upset.
  if (bytes < 64) throw new RangeError("at least 64 bytes of APP segments");
  const exif = concat(latin1("Exif\0\0II*\0"), u32le(8), u16le(0), u32le(0));
  const first = Math.min(bytes, 65537);
  return concat(
    jpeg.subarray(0, 2),
    jpegSegments(0xe1, first - 4, seed, exif),
    jpegSegments(0xeb, bytes - first, seed + 1),
    jpeg.subarray(2),
  );
}

/** Adds a comment extension of about `extra` bytes before the GIF trailer. */
export function padGif(gif: Uint8Array, extra: number, seed: number): Uint8Array {
  const data = filler(Math.max(1, extra - 3 - Math.ceil(extra / 255)), seed);
  const blocks: Uint8Array[] = [Uint8Array.of(0x21, 0xfe)];
  for (let at = 0; at < data.length; at += 255) {
    const block = data.subarray(at, at + 255);
    blocks.push(Uint8Array.of(block.length), block);
  }
  blocks.push(Uint8Array.of(0));
  const trailer = gif.length - 1; // the final 0x3b
  return concat(gif.subarray(0, trailer), ...blocks, gif.subarray(trailer));
}

/** Adds an XMP chunk of about `extra` bytes, switching to the extended (VP8X) layout. */
export function padWebp(
  webp: Uint8Array,
  extra: number,
  width: number,
  height: number,
  seed: number,
): Uint8Array {
  const open = latin1(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><!-- `);
  const close = latin1(` --></x:xmpmeta>`);
  let payload = concat(open, filler(extra - 8 - open.length - close.length, seed), close);
  if (payload.length % 2) payload = concat(payload, latin1(" ")); // chunks have even sizes
  const xmp = concat(latin1("XMP "), u32le(payload.length), payload);

  const XMP_FLAG = 0x04;
  let body: Uint8Array;
  if (String.fromCharCode(...webp.subarray(12, 16)) === "VP8X") {
    body = webp.slice(12);
    body[8] |= XMP_FLAG;
  } else {
    const size24 = (n: number) => Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff);
    const vp8x = concat(
      latin1("VP8X"),
      u32le(10),
      Uint8Array.of(XMP_FLAG, 0, 0, 0),
      size24(width - 1),
      size24(height - 1),
    );
    body = concat(vp8x, webp.subarray(12));
  }
  return concat(latin1("RIFF"), u32le(4 + body.length + xmp.length), latin1("WEBP"), body, xmp);
}

/** Appends a top-level `free` box of about `extra` bytes (item offsets stay valid). */
export function padIsobmff(file: Uint8Array, extra: number, seed: number): Uint8Array {
  const size = Math.max(8, extra);
  return concat(file, u32be(size), latin1("free"), filler(size - 8, seed));
}

/** Appends unreferenced bytes; TIFF locates everything by offset, so readers ignore them. */
export function padTiff(tiff: Uint8Array, extra: number, seed: number): Uint8Array {
  return concat(tiff, filler(extra, seed));
}

/**
 * A 24-bit bottom-up BMP of RGB `pixels`, with `gap` unused bytes between the headers and the
 * pixel data (the pixel-data offset allows it), which is how its size is padded.
 */
export function bmpFromRgb(rgb: Uint8Array, width: number, height: number, gap = 0): Uint8Array {
  const stride = (width * 3 + 3) & ~3;
  const offset = 54 + gap;
  const out = new Uint8Array(offset + stride * height);
  const view = new DataView(out.buffer);
  out.set(latin1("BM"));
  view.setUint32(2, out.length, true);
  view.setUint32(10, offset, true);
  view.setUint32(14, 40, true); // BITMAPINFOHEADER
  view.setInt32(18, width, true);
  view.setInt32(22, height, true); // positive: rows stored bottom-up
  view.setUint16(26, 1, true);
  view.setUint16(28, 24, true);
  view.setUint32(34, stride * height, true);
  view.setInt32(38, 2835, true); // 72 dpi
  view.setInt32(42, 2835, true);
  out.set(filler(gap, width * height), 54);
  for (let y = 0; y < height; y++) {
    const row = offset + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const src = (y * width + x) * 3;
      out[row + x * 3] = rgb[src + 2];
      out[row + x * 3 + 1] = rgb[src + 1];
      out[row + x * 3 + 2] = rgb[src];
    }
  }
  return out;
}

/** An ICO holding the given PNGs (each at most 256x256), sizes taken from their IHDR. */
export function icoFromPngs(pngs: Uint8Array[]): Uint8Array {
  const directory: Uint8Array[] = [];
  let offset = 6 + pngs.length * 16;
  for (const png of pngs) {
    const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
    const width = view.getUint32(16);
    const height = view.getUint32(20);
    if (width > 256 || height > 256) throw new RangeError("ICO entries are at most 256x256");
    directory.push(concat(
      Uint8Array.of(width & 0xff, height & 0xff, 0, 0), // 256 is written as 0
      u16le(1), // colour planes
      u16le(32), // bits per pixel
      u32le(png.length),
      u32le(offset),
    ));
    offset += png.length;
  }
  return concat(Uint8Array.of(0, 0, 1, 0), u16le(pngs.length), ...directory, ...pngs);
}

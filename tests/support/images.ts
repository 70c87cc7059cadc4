/**
 * Fixture images for tests and benchmarks: real, decodable files of every accepted format with
 * exact dimensions and roughly chosen sizes, plus look-alikes that must be refused.
 */
import sharp from "sharp";
import type { ImageFormat } from "../../services/image/types.ts";
import {
  bmpFromRgb,
  concat,
  icoFromPngs,
  latin1,
  padGif,
  padIsobmff,
  padJpeg,
  padPng,
  padTiff,
  padWebp,
  prng,
} from "./image_containers.ts";

export { icoFromPngs, jpegWithAppSegments, pngWithDimensions } from "./image_containers.ts";

/** What to generate. */
export interface MakeImageOptions {
  width: number;
  height: number;
  /**
   * Approximate file size. Reached by replacing part of a banded gradient with noise, then
   * padding with ignorable data (comments, metadata) when the pixels alone fall short. A target
   * below what the plain gradient compresses to cannot be met and is exceeded; so is any target
   * below a BMP's raw size (3 bytes per pixel), since BMP is stored uncompressed.
   */
  targetBytes?: number;
  /** Same seed, same bytes. Defaults to 1. */
  seed?: number;
}

type SharpFormat = Exclude<ImageFormat, "bmp" | "ico">;
type Sharp = ReturnType<typeof sharp>;

interface Codec {
  encode: (image: Sharp) => Sharp;
  /** Measured sizes: bytes per noise pixel, per gradient pixel, and fixed overhead. */
  perNoisy: number;
  perSmooth: number;
  fixed: number;
  pad: (file: Uint8Array, extra: number, width: number, height: number, seed: number) => Uint8Array;
}

// Settings favour encoding speed: benchmarks generate thousands of these.
const CODECS: Record<SharpFormat, Codec> = {
  jpeg: {
    encode: (s) => s.jpeg({ quality: 80 }),
    perNoisy: 0.64,
    perSmooth: 0.03,
    fixed: 600,
    pad: (f, n, _w, _h, seed) => padJpeg(f, n, seed),
  },
  png: {
    encode: (s) => s.png({ compressionLevel: 3, adaptiveFiltering: true }),
    perNoisy: 3.4,
    perSmooth: 0.01,
    fixed: 100,
    pad: (f, n, _w, _h, seed) => padPng(f, n, seed),
  },
  gif: {
    encode: (s) => s.gif({ effort: 1, dither: 0 }),
    perNoisy: 1.15,
    perSmooth: 0.05,
    fixed: 900,
    pad: (f, n, _w, _h, seed) => padGif(f, n, seed),
  },
  webp: {
    encode: (s) => s.webp({ quality: 80, effort: 0 }),
    perNoisy: 0.68,
    perSmooth: 0.01,
    fixed: 100,
    pad: padWebp,
  },
  avif: {
    encode: (s) => s.avif({ quality: 50, effort: 0 }),
    perNoisy: 0.49,
    perSmooth: 0.01,
    fixed: 400,
    pad: (f, n, _w, _h, seed) => padIsobmff(f, n, seed),
  },
  tiff: {
    encode: (s) => s.tiff({ compression: "lzw" }),
    perNoisy: 4.1,
    perSmooth: 0.03,
    fixed: 300,
    pad: (f, n, _w, _h, seed) => padTiff(f, n, seed),
  },
};

/**
 * RGB pixels: a banded gradient between two seed-chosen colours, its first `noisy` pixels (in
 * raster order) replaced by random ones. With `fewColours`, the noise fits a small palette too,
 * which makes GIF quantisation several times faster.
 */
function rgbPixels(
  width: number,
  height: number,
  noisy: number,
  seed: number,
  fewColours = false,
): Uint8Array {
  const next = prng(seed);
  const from = [next() & 0xff, next() & 0xff, next() & 0xff];
  const to = [next() & 0xff, next() & 0xff, next() & 0xff];
  // Bands of flat colour rather than a true gradient: lossless codecs would otherwise spend
  // more on the "smooth" part than small size targets allow. A lookup keeps this fast.
  const BANDS = 16;
  const bands = new Uint8Array((BANDS + 1) * 3);
  for (let k = 0; k <= BANDS; k++) {
    for (let c = 0; c < 3; c++) bands[k * 3 + c] = from[c] + ((to[c] - from[c]) * k) / BANDS;
  }
  const column = Float64Array.from({ length: width }, (_, x) => x / Math.max(1, width - 1));

  const out = new Uint8Array(width * height * 3);
  for (let y = 0, o = 0; y < height; y++) {
    const row = y / Math.max(1, height - 1);
    for (let x = 0; x < width; x++, o += 3) {
      const band = Math.round(((column[x] + row) * BANDS) / 2) * 3;
      out[o] = bands[band];
      out[o + 1] = bands[band + 1];
      out[o + 2] = bands[band + 2];
    }
  }
  for (let i = 0, o = 0; i < noisy; i++, o += 3) {
    const r = next();
    // 128 colours (3+2+2 bits) when few are wanted, any colour otherwise.
    out[o] = fewColours ? (r & 7) * 36 : r;
    out[o + 1] = fewColours ? ((r >>> 3) & 3) * 85 : r >>> 8;
    out[o + 2] = fewColours ? ((r >>> 5) & 3) * 85 : r >>> 16;
  }
  return out;
}

async function encodeWithNoise(
  format: SharpFormat,
  width: number,
  height: number,
  noisy: number,
  seed: number,
  alpha = false,
): Promise<Uint8Array> {
  const raw = rgbPixels(width, height, noisy, seed, format === "gif");
  let image = sharp(raw, { raw: { width, height, channels: 3 } });
  if (alpha) image = image.ensureAlpha();
  return new Uint8Array(await CODECS[format].encode(image).toBuffer());
}

/**
 * Encodes with as much noise as the size model says the target needs, aiming a little low
 * because padding is much cheaper than encoding again. Re-encodes (at most twice) only when the
 * model was far off, then pads whatever is still missing.
 */
async function encodeToSize(
  format: SharpFormat,
  width: number,
  height: number,
  target: number | undefined,
  seed: number,
  alpha = false,
): Promise<Uint8Array> {
  const codec = CODECS[format];
  const pixels = width * height;
  if (target === undefined) return encodeWithNoise(format, width, height, 0, seed, alpha);

  const aim = target * 0.92;
  const smooth = codec.fixed + codec.perSmooth * pixels;
  const clampNoisy = (n: number) => Math.round(Math.min(pixels, Math.max(0, n)));
  // An alpha channel, even an opaque one, costs about a sixth more per noisy pixel.
  const perNoisyGuess = codec.perNoisy * (alpha ? 1.15 : 1);
  let noisy = clampNoisy((aim - smooth) / perNoisyGuess);
  let file = await encodeWithNoise(format, width, height, noisy, seed, alpha);
  for (let retry = 0; retry < 2; retry++) {
    if (file.length <= target * 1.1 && (file.length >= target * 0.75 || noisy === pixels)) break;
    // Re-fit the bytes per noisy pixel on what the encoder actually did.
    const perNoisy = noisy > pixels / 50 ? (file.length - smooth) / noisy : perNoisyGuess;
    if (perNoisy <= 0) break;
    const next = clampNoisy(noisy + (aim - file.length) / perNoisy);
    if (next === noisy) break;
    noisy = next;
    file = await encodeWithNoise(format, width, height, noisy, seed, alpha);
  }
  const missing = target - file.length;
  return missing > 64 ? codec.pad(file, missing, width, height, seed) : file;
}

function checkDimensions(format: ImageFormat, width: number, height: number): void {
  for (const [name, value] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  if (format === "ico" && (width > 256 || height > 256)) {
    throw new RangeError("ICO images are at most 256x256");
  }
}

/**
 * A real, decodable image of `format` with exactly `width`x`height` pixels, about
 * `targetBytes` long when given (within ~15% unless the target is below the gradient's size),
 * deterministic for a seed. BMP is 24-bit uncompressed; ICO holds one PNG entry.
 */
export async function makeImage(format: ImageFormat, opts: MakeImageOptions): Promise<Uint8Array> {
  const { width, height, targetBytes, seed = 1 } = opts;
  checkDimensions(format, width, height);
  if (format === "bmp") {
    const rgb = rgbPixels(width, height, Math.floor(width * height / 10), seed);
    const natural = 54 + ((width * 3 + 3) & ~3) * height;
    return bmpFromRgb(rgb, width, height, Math.max(0, (targetBytes ?? 0) - natural));
  }
  if (format === "ico") {
    const overhead = 6 + 16;
    const png = await encodeToSize(
      "png",
      width,
      height,
      targetBytes && targetBytes - overhead,
      seed,
      true,
    );
    return icoFromPngs([png]);
  }
  return encodeToSize(format, width, height, targetBytes, seed);
}

/** Named SVG documents, each of which must be recognised as SVG. */
export const SVG_SAMPLES = {
  plain:
    `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`,
  xmlDeclaration:
    `<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>`,
  doctype: `<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" ` +
    `"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg xmlns="http://www.w3.org/2000/svg"></svg>`,
  commentFirst:
    `<!-- Generator: some editor <svg> -->\n\n<svg\nxmlns="http://www.w3.org/2000/svg"></svg>`,
  internalSubset:
    `<?xml version="1.0"?><!DOCTYPE svg [ <!ENTITY a "<b>"> ]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>`,
  stylesheet:
    `<?xml version="1.0"?><?xml-stylesheet href="s.css"?>\r\n<svg xmlns="http://www.w3.org/2000/svg"/>`,
  namespacePrefix: `<svg:svg xmlns:svg="http://www.w3.org/2000/svg"></svg:svg>`,
  leadingWhitespace: `\n\n   \t<svg xmlns="http://www.w3.org/2000/svg"/>`,
} as const;

/** Encodings an SVG sample can be delivered in. */
export type SvgEncoding = "utf-8" | "utf-8-bom" | "utf-16le-bom" | "utf-16be-bom";

/** An SVG document as bytes. */
export function svgBytes(
  sample: keyof typeof SVG_SAMPLES = "plain",
  encoding: SvgEncoding = "utf-8",
): Uint8Array {
  const text = SVG_SAMPLES[sample];
  if (encoding === "utf-8") return new TextEncoder().encode(text);
  if (encoding === "utf-8-bom") return new TextEncoder().encode("\ufeff" + text);
  return Uint8Array.from(
    ("\ufeff" + text).split("").flatMap((c) => {
      const code = c.charCodeAt(0);
      return encoding === "utf-16le-bom" ? [code & 0xff, code >> 8] : [code >> 8, code & 0xff];
    }),
  );
}

/** An HTML error page, with an inline SVG icon to make sure that does not count as SVG. */
export function htmlBytes(): Uint8Array {
  return latin1(
    `<!DOCTYPE html>\n<html lang="en"><head><title>404 Not Found</title></head>` +
      `<body><svg width="1" height="1"></svg><h1>Not Found</h1></body></html>\n`,
  );
}

/** A JSON error body, as APIs return instead of an image. */
export function jsonBytes(): Uint8Array {
  return latin1(`{"error":"not_found","message":"no such image"}`);
}

/** Random bytes, deterministic for a seed. */
export function randomBytes(length: number, seed = 1): Uint8Array {
  const next = prng(seed);
  return Uint8Array.from({ length }, () => next() & 0xff);
}

/**
 * The start of a HEIC file: an ftyp box with HEIF brands only, then the beginning of a meta
 * box. Structurally like AVIF, but not a format the service accepts.
 */
export function heicBytes(): Uint8Array {
  const ftyp = concat(
    Uint8Array.of(0, 0, 0, 24),
    latin1("ftypheic"),
    Uint8Array.of(0, 0, 0, 0),
    latin1("mif1heic"),
  );
  return concat(ftyp, Uint8Array.of(0, 0, 0, 12), latin1("meta"), new Uint8Array(4));
}

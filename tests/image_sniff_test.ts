import assert from "node:assert/strict";
import sharp from "sharp";
import { CONTENT_TYPES, sniffImage } from "../services/image/sniff.ts";
import { IMAGE_FORMATS, type ImageFormat, type SniffResult } from "../services/image/types.ts";
import {
  heicBytes,
  htmlBytes,
  icoFromPngs,
  jpegWithAppSegments,
  jsonBytes,
  makeImage,
  pngWithDimensions,
  randomBytes,
  SVG_SAMPLES,
  svgBytes,
  type SvgEncoding,
} from "./support/images.ts";

const SIZES: Record<ImageFormat, [number, number][]> = {
  jpeg: [[1, 1], [17, 9], [640, 480]],
  png: [[1, 1], [31, 200], [1200, 3]],
  gif: [[1, 1], [65, 17], [300, 301]],
  webp: [[1, 1], [99, 7], [500, 400]],
  avif: [[1, 1], [33, 65], [320, 240]],
  bmp: [[1, 1], [3, 5], [123, 45]],
  tiff: [[1, 1], [10, 70], [250, 250]],
  ico: [[1, 1], [48, 20], [256, 256]],
};

function assertImage(result: SniffResult, format: ImageFormat, width: number, height: number) {
  assert.deepEqual(result, {
    kind: "image",
    info: { format, contentType: CONTENT_TYPES[format], width, height },
  });
}

function assertNotAnImage(result: SniffResult, detail?: RegExp) {
  assert.equal(result.kind, "rejected", JSON.stringify(result));
  assert.equal(result.reason, "not_an_image", result.detail);
  assert.ok(result.detail.length > 0);
  if (detail) assert.match(result.detail, detail);
}

/** Shortest prefix that an incomplete download can be decided on. */
function decisionPoint(bytes: Uint8Array): number {
  for (let n = 0; n <= bytes.length; n++) {
    if (sniffImage(bytes.subarray(0, n), false).kind !== "need_more") return n;
  }
  return -1;
}

const LABELS: Record<ImageFormat, string> = {
  jpeg: "a JPEG",
  png: "a PNG",
  gif: "a GIF",
  webp: "a WebP",
  avif: "an AVIF",
  bmp: "a BMP",
  tiff: "a TIFF",
  ico: "an ICO",
};

for (const format of IMAGE_FORMATS) {
  Deno.test(`sniffImage() identifies ${LABELS[format]} and its dimensions`, async () => {
    for (const [width, height] of SIZES[format]) {
      for (const targetBytes of [undefined, 30_000]) {
        const bytes = await makeImage(format, { width, height, targetBytes, seed: width });
        assertImage(sniffImage(bytes, true), format, width, height);
        // The download may go on past the header: that must not change the answer.
        assertImage(sniffImage(bytes, false), format, width, height);
      }
    }
  });

  Deno.test(`sniffImage() waits for ${LABELS[format]} header and refuses it truncated`, async () => {
    const bytes = await makeImage(format, { width: 37, height: 23, seed: 3 });
    const point = decisionPoint(bytes);
    assert.ok(point > 0, "some prefix must be too short to decide");
    for (let n = 0; n < point; n++) {
      assertNotAnImage(sniffImage(bytes.subarray(0, n), true));
    }
    for (const n of [point, point + 1, Math.floor((point + bytes.length) / 2), bytes.length]) {
      if (n <= bytes.length) assertImage(sniffImage(bytes.subarray(0, n), false), format, 37, 23);
    }
  });
}

Deno.test("sniffImage() decides simple formats as soon as their fixed header is in", async () => {
  const expected: [ImageFormat, number][] = [["png", 24], ["gif", 10], ["bmp", 30], ["ico", 22]];
  for (const [format, length] of expected) {
    assert.equal(decisionPoint(await makeImage(format, { width: 5, height: 4 })), length, format);
  }
});

Deno.test("makeImage() output decodes at the requested size", async () => {
  for (const format of IMAGE_FORMATS) {
    for (const [width, height] of SIZES[format]) {
      const bytes = await makeImage(format, { width, height, targetBytes: 20_000, seed: 9 });
      if (format === "bmp" || format === "ico") {
        // libvips reads neither; Deno's own decoder does.
        const bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]));
        assert.deepEqual([bitmap.width, bitmap.height], [width, height], format);
      } else {
        const { info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
        assert.deepEqual([info.width, info.height], [width, height], format);
      }
    }
  }
});

Deno.test("makeImage() is deterministic per seed and lands near targetBytes", async () => {
  for (const format of IMAGE_FORMATS) {
    const opts = { width: 200, height: 150, targetBytes: 40_000, seed: 5 };
    const a = await makeImage(format, opts);
    assert.deepEqual(a, await makeImage(format, opts), `${format} not deterministic`);
    assert.notDeepEqual(a, await makeImage(format, { ...opts, seed: 6 }), format);
    if (format === "bmp") continue; // 90 KB of raw pixels: the target can only grow it
    assert.ok(Math.abs(a.length - 40_000) < 12_000, `${format}: ${a.length} bytes`);
  }
  const big = await makeImage("jpeg", { width: 1000, height: 800, targetBytes: 500_000 });
  assert.ok(Math.abs(big.length - 500_000) < 150_000, `${big.length} bytes`);
});

Deno.test("sniffImage() finds a JPEG size behind large EXIF/APP segments", async () => {
  const plain = await makeImage("jpeg", { width: 321, height: 123 });
  const bytes = jpegWithAppSegments(plain, 300_000);
  const point = decisionPoint(bytes);
  assert.ok(point > 300_000, `decided at ${point}, before the frame header`);
  for (const n of [2, 3, 4, 1000, 65_536, 65_540, 200_000, point - 1]) {
    assert.deepEqual(sniffImage(bytes.subarray(0, n), false), { kind: "need_more" }, `at ${n}`);
  }
  // A caller that gives up before the frame header gets a clear refusal.
  assertNotAnImage(sniffImage(bytes.subarray(0, 200_000), true), /frame header/);
  assertImage(sniffImage(bytes.subarray(0, point), false), "jpeg", 321, 123);
  assertImage(sniffImage(bytes, true), "jpeg", 321, 123);
  // The fixture must stay decodable for the image to be a fair test.
  assert.equal((await sharp(bytes).metadata()).width, 321);
});

Deno.test("sniffImage() tolerates JPEG fill bytes and refuses a deferred (DNL) height", async () => {
  const jpeg = await makeImage("jpeg", { width: 12, height: 34 });
  // Any marker may be preceded by extra 0xff bytes.
  const filled = new Uint8Array([...jpeg.subarray(0, 2), 0xff, 0xff, 0xff, ...jpeg.subarray(2)]);
  assertImage(sniffImage(filled, true), "jpeg", 12, 34);
  const sof = [0xff, 0xc0, 0, 11, 8, 0, 0, 0, 12, 1, 1, 0x11, 0];
  assertNotAnImage(sniffImage(Uint8Array.of(0xff, 0xd8, ...sof), false), /DNL/);
});

Deno.test("sniffImage() reads WebP lossless (VP8L) and extended (VP8X) headers", async () => {
  const raw = new Uint8Array(77 * 33 * 3).fill(90);
  const lossless = new Uint8Array(
    await sharp(raw, { raw: { width: 77, height: 33, channels: 3 } }).webp({ lossless: true })
      .toBuffer(),
  );
  assert.equal(String.fromCharCode(...lossless.subarray(12, 16)), "VP8L");
  assertImage(sniffImage(lossless, true), "webp", 77, 33);

  // Padding switches the fixture to the extended layout.
  const extended = await makeImage("webp", { width: 77, height: 33, targetBytes: 50_000 });
  assert.equal(String.fromCharCode(...extended.subarray(12, 16)), "VP8X");
  assertImage(sniffImage(extended, true), "webp", 77, 33);
});

/** A minimal big-endian TIFF with width as SHORT and height as LONG. */
function bigEndianTiff(width: number, height: number): Uint8Array {
  const b = new Uint8Array(8 + 2 + 2 * 12 + 4);
  const v = new DataView(b.buffer);
  b.set([0x4d, 0x4d, 0, 42]);
  v.setUint32(4, 8);
  v.setUint16(8, 2);
  v.setUint16(10, 256);
  v.setUint16(12, 3);
  v.setUint32(14, 1);
  v.setUint16(18, width);
  v.setUint16(22, 257);
  v.setUint16(24, 4);
  v.setUint32(26, 1);
  v.setUint32(30, height);
  return b;
}

Deno.test("sniffImage() reads big-endian TIFF and little-endian TIFF with IFD at the end", async () => {
  assertImage(sniffImage(bigEndianTiff(4000, 70_000), true), "tiff", 4000, 70_000);
  const tiff = await makeImage("tiff", { width: 64, height: 64, targetBytes: 20_000 });
  const ifd = new DataView(tiff.buffer).getUint32(4, true);
  // libtiff writes the directory after the pixels: nothing can be said before it arrives.
  assert.ok(ifd > 1000, `IFD at ${ifd}`);
  assert.deepEqual(sniffImage(tiff.subarray(0, ifd), false), { kind: "need_more" });
  assertNotAnImage(sniffImage(tiff.subarray(0, ifd), true), /IFD/);
});

Deno.test("sniffImage() handles BMP header variants and refuses implausible ones", async () => {
  const bmp = await makeImage("bmp", { width: 7, height: 9 });
  const topDown = bmp.slice();
  new DataView(topDown.buffer).setInt32(22, -9, true);
  assertImage(sniffImage(topDown, true), "bmp", 7, 9);

  const core = new Uint8Array(26 + 4 * 3);
  const v = new DataView(core.buffer);
  core.set([0x42, 0x4d]);
  v.setUint32(2, core.length, true);
  v.setUint32(10, 26, true);
  v.setUint32(14, 12, true);
  v.setUint16(18, 2, true);
  v.setUint16(20, 2, true);
  v.setUint16(22, 1, true);
  v.setUint16(24, 24, true);
  assertImage(sniffImage(core, true), "bmp", 2, 2);

  const badDib = bmp.slice();
  new DataView(badDib.buffer).setUint32(14, 41, true);
  assertNotAnImage(sniffImage(badDib, false), /DIB/);
  const badDepth = bmp.slice();
  new DataView(badDepth.buffer).setUint16(28, 23, true);
  assertNotAnImage(sniffImage(badDepth, false), /bits/);
  // "BM" followed by text is not a bitmap.
  assertNotAnImage(sniffImage(new TextEncoder().encode("BMW owners club: welcome!"), false));
});

Deno.test("sniffImage() sizes an ICO by its largest entry, 0 meaning 256", async () => {
  const png = async (width: number, height: number) =>
    new Uint8Array(
      await sharp(new Uint8Array(width * height * 4), { raw: { width, height, channels: 4 } })
        .png().toBuffer(),
    );
  const ico = icoFromPngs([await png(16, 16), await png(48, 40), await png(32, 32)]);
  assertImage(sniffImage(ico, true), "ico", 48, 40);
  const big = icoFromPngs([await png(16, 16), await png(256, 256)]);
  assert.equal(big[6 + 16], 0, "256 is stored as 0");
  assertImage(sniffImage(big, true), "ico", 256, 256);

  // The ICO signature followed by garbage is refused without waiting for the whole directory.
  const garbage = Uint8Array.of(0, 0, 1, 0, 0xff, 0x7f, ...randomBytes(64, 4));
  assertNotAnImage(sniffImage(garbage, false), /ICO/);
  assertNotAnImage(sniffImage(Uint8Array.of(0, 0, 1, 0, 0, 0, 1, 2, 3, 4), true), /empty/);
});

Deno.test("sniffImage() refuses corrupt headers of known formats", async () => {
  assertImage(sniffImage(pngWithDimensions(20_000, 20_000), true), "png", 20_000, 20_000);
  assertNotAnImage(sniffImage(pngWithDimensions(0, 10), true), /width/);
  const gif = await makeImage("gif", { width: 4, height: 4 });
  const flat = gif.slice();
  flat.set([0, 0], 8);
  assertNotAnImage(sniffImage(flat, false), /height/);
  const png = await makeImage("png", { width: 4, height: 4 });
  const noIhdr = png.slice();
  noIhdr.set([0x43, 0x67, 0x42, 0x49], 12); // "CgBI"
  assertNotAnImage(sniffImage(noIhdr, false), /IHDR/);
  // A JPEG signature with image data but no frame header.
  assertNotAnImage(sniffImage(Uint8Array.of(0xff, 0xd8, 0xff, 0xda, 0, 2, 1, 2), false), /SOF/);
  const riffWave = new TextEncoder().encode("RIFF\x24\0\0\0WAVEfmt \x10\0\0\0");
  assertNotAnImage(sniffImage(riffWave, true));
});

/** An ftyp box with the given brands, followed by the start of another box. */
function ftyp(major: string, ...compatible: string[]): Uint8Array {
  const text = `${major}\0\0\0\0${compatible.join("")}`;
  const box = new Uint8Array(8 + text.length + 8);
  new DataView(box.buffer).setUint32(0, 8 + text.length);
  box.set(new TextEncoder().encode(`ftyp${text}`), 4);
  box.set(new TextEncoder().encode("\0\0\0\x08free"), 8 + text.length);
  return box;
}

Deno.test("sniffImage() refuses HEIC and other ISO BMFF files but finds AVIF by any brand", async () => {
  const heic = sniffImage(heicBytes(), false);
  assert.equal(heic.kind, "rejected");
  assert.equal(heic.reason, "unsupported_format");
  assert.match(heic.detail, /HEIC/);
  assert.equal(sniffImage(ftyp("mif1", "mif1", "heic"), true).kind, "rejected");
  assertNotAnImage(sniffImage(ftyp("isom", "isom", "iso2", "mp41"), true), /not an AVIF/);

  // AVIF named only among the compatible brands is still AVIF.
  const avif = await makeImage("avif", { width: 40, height: 30 });
  const renamed = avif.slice();
  renamed.set(new TextEncoder().encode("mif1"), 8);
  assertImage(sniffImage(renamed, true), "avif", 40, 30);
  // While the brands are still arriving there is nothing to say.
  assert.deepEqual(sniffImage(ftyp("mif1", "mif1", "avif").subarray(0, 20), false), {
    kind: "need_more",
  });
});

/** An ISO BMFF box. */
function box(type: string, ...payload: (Uint8Array | number[])[]): Uint8Array {
  const body = payload.flatMap((p) => [...p]);
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setUint32(0, out.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(body, 8);
  return out;
}

const u32 = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

Deno.test("sniffImage() takes an AVIF size from the primary item's ispe", () => {
  const ispe = (w: number, h: number) => box("ispe", [0, 0, 0, 0], u32(w), u32(h));
  const meta = (primary: number) =>
    box(
      "meta",
      [0, 0, 0, 0],
      box("pitm", [0, 0, 0, 0, 0, primary]),
      box(
        "iprp",
        box("ipco", ispe(640, 480), ispe(1280, 960)),
        // Two items, version 0 with 7-bit indices: item 1 -> property 1, item 2 -> property 2.
        box("ipma", [0, 0, 0, 0], u32(2), [0, 1, 1, 0x81], [0, 2, 1, 0x82]),
      ),
    );
  const file = (primary: number) =>
    new Uint8Array([
      ...box("ftyp", [...new TextEncoder().encode("avif"), 0, 0, 0, 0]),
      ...meta(primary),
    ]);
  assertImage(sniffImage(file(1), true), "avif", 640, 480);
  assertImage(sniffImage(file(2), true), "avif", 1280, 960);
  // Cut inside meta: wait, or refuse once nothing more will come.
  assert.deepEqual(sniffImage(file(1).subarray(0, 60), false), { kind: "need_more" });
  assertNotAnImage(sniffImage(file(1).subarray(0, 60), true), /meta/);
});

Deno.test("sniffImage() rejects SVG in all its spellings as unsupported_format", () => {
  const encodings: SvgEncoding[] = ["utf-8", "utf-8-bom", "utf-16le-bom", "utf-16be-bom"];
  for (const sample of Object.keys(SVG_SAMPLES) as (keyof typeof SVG_SAMPLES)[]) {
    for (const encoding of encodings) {
      for (const isComplete of [true, false]) {
        assert.deepEqual(
          sniffImage(svgBytes(sample, encoding), isComplete),
          { kind: "rejected", reason: "unsupported_format", detail: "SVG is not accepted" },
          `${sample} in ${encoding}`,
        );
      }
    }
  }
});

Deno.test("sniffImage() waits while an SVG prolog is still arriving", () => {
  const bytes = svgBytes("doctype");
  const root = new TextDecoder().decode(bytes).indexOf("<svg");
  for (const n of [1, 5, 30, root, root + 3]) {
    assert.deepEqual(sniffImage(bytes.subarray(0, n), false), { kind: "need_more" }, `at ${n}`);
    assertNotAnImage(sniffImage(bytes.subarray(0, n), true));
  }
  assert.equal(sniffImage(bytes.subarray(0, root + 5), false).kind, "rejected");
  // A prolog longer than the search window is not waited for.
  const endless = new TextEncoder().encode(`<?xml version="1.0"?>\n<!--${" ".repeat(70_000)}`);
  assertNotAnImage(sniffImage(endless, false));
});

Deno.test("sniffImage() rejects HTML, JSON, XML, text, empty and random bodies as not_an_image", () => {
  const text = (s: string) => new TextEncoder().encode(s);
  assertNotAnImage(sniffImage(htmlBytes(), false), /<html>/);
  assertNotAnImage(sniffImage(jsonBytes(), false));
  assertNotAnImage(sniffImage(text(`<?xml version="1.0"?><rss version="2.0"></rss>`), false));
  assertNotAnImage(sniffImage(text("Not Found"), false));
  assertNotAnImage(sniffImage(text("   \n"), true));
  assertNotAnImage(sniffImage(new Uint8Array(0), true), /empty/);
  assertNotAnImage(sniffImage(text("GIF8"), true), /too few/);
  for (let seed = 1; seed <= 200; seed++) {
    assertNotAnImage(sniffImage(randomBytes(1 + seed * 7, seed), true));
  }
});

Deno.test("sniffImage() asks for more only when the bytes could still become an image", () => {
  const needMore = { kind: "need_more" };
  assert.deepEqual(sniffImage(new Uint8Array(0), false), needMore);
  assert.deepEqual(sniffImage(Uint8Array.of(0xff), false), needMore);
  assert.deepEqual(sniffImage(Uint8Array.of(0x89, 0x50), false), needMore);
  assert.deepEqual(sniffImage(new TextEncoder().encode("RIFF\0\0"), false), needMore);
  // 00 00 01 00 starts an ICO but may also start an ftyp box of 256 bytes.
  assert.deepEqual(sniffImage(Uint8Array.of(0, 0, 1, 0), false), needMore);
  assert.deepEqual(sniffImage(new TextEncoder().encode("\n  "), false), needMore);
  assertNotAnImage(sniffImage(new TextEncoder().encode("{"), false));
  assertNotAnImage(sniffImage(Uint8Array.of(0x89, 0x51), false));
});

Deno.test("sniffImage() keeps asking for more on large undecided prefixes", async () => {
  const jpeg = jpegWithAppSegments(await makeImage("jpeg", { width: 8, height: 8 }), 1_100_000);
  const tiff = new Uint8Array(1 << 20);
  tiff.set([0x49, 0x49, 42, 0, 0xff, 0xff, 0xff, 0x0f]); // IFD far beyond what arrived
  // Markup is only searched for its root within the first 64 KiB.
  const comment = new TextEncoder().encode(`<?xml version="1.0"?><!--${" ".repeat(60_000)}`);
  for (let i = 0; i < 100; i++) {
    for (const bytes of [jpeg, tiff, comment]) {
      const n = Math.min(bytes.length, 1 << 20) - i;
      assert.equal(sniffImage(bytes.subarray(0, n), false).kind, "need_more");
    }
  }
});

/**
 * Stored images for transform tests: bytes staged and indexed through the
 * service's own blob store and image index (no download), plus sources
 * that only sharp makes easily (animated, rotated, with EXIF).
 */
import sharp from "sharp";
import { sniffImage } from "../../services/image/sniff.ts";
import type { Service } from "../../services/service.ts";
import { urlHash } from "../../services/store/ids.ts";
import type { ImageRecord } from "../../services/store/records.ts";
import type { VariantSpec } from "../../services/transform/variants.ts";

async function* once(bytes: Uint8Array) {
  yield bytes;
}

/** Stores `bytes` as the image of `url`, as a download would, and returns its record. */
export async function storeImage(
  service: Service,
  url: string,
  bytes: Uint8Array,
  variants?: VariantSpec[],
): Promise<ImageRecord> {
  const sniffed = sniffImage(bytes, true);
  if (sniffed.kind !== "image") throw new Error(`not an image: ${sniffed.kind}`);
  const staged = await service.blobs.stage(once(bytes.slice()));
  await staged.commit();
  return await service.images.put({
    url,
    sha256: staged.sha256,
    bytes: staged.bytes,
    ...sniffed.info,
    storedAt: Date.now(),
    ...(variants ? { variants } : {}),
  }, urlHash(url));
}

const u8 = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** An animated GIF of `colours.length` frames of `width`x`height`. */
export async function animatedGif(width: number, height: number, colours: string[]) {
  const frames = await Promise.all(
    colours.map((background) =>
      sharp({ create: { width, height, channels: 4, background } }).png().toBuffer()
    ),
  );
  return u8(
    await sharp(frames, { join: { animated: true } }).gif({ delay: 100, loop: 0 }).toBuffer(),
  );
}

/** A JPEG stored sideways: `width`x`height` pixels with EXIF orientation 6 (turn 90° clockwise). */
export async function sidewaysJpeg(width: number, height: number) {
  return u8(
    await sharp({ create: { width, height, channels: 3, background: "#3070b0" } })
      .jpeg().withMetadata({ orientation: 6 }).toBuffer(),
  );
}

/** A JPEG carrying EXIF (a copyright line) and an ICC profile. */
export async function jpegWithExif(width: number, height: number) {
  return u8(
    await sharp({ create: { width, height, channels: 3, background: "#b07030" } })
      .jpeg().withExif({ IFD0: { Copyright: "transform test" } }).toBuffer(),
  );
}

/** What sharp reads back from an answer's bytes. */
export async function readBack(res: Response) {
  const bytes = new Uint8Array(await res.arrayBuffer());
  const meta = await sharp(bytes, { animated: true }).metadata();
  return {
    bytes,
    format: meta.format,
    width: meta.width,
    height: meta.pageHeight ?? meta.height,
    pages: meta.pages ?? 1,
    exif: meta.exif !== undefined,
    orientation: meta.orientation,
  };
}

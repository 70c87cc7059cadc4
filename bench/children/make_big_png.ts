/**
 * Writes a valid PNG of exactly TARGET_BYTES from a small real one: its IHDR, then private
 * ancillary chunks of filler (type `paDd`: decoders skip them, any PNG reader must still read past
 * them), then the source's own IDAT and IEND. The pixel count stays the source's, so only the
 * byte limit needs raising to accept it. Written in 8 MiB chunks, never held in memory.
 *
 * Usage: deno run --allow-read --allow-write make_big_png.ts SOURCE_PNG OUT_FILE TARGET_BYTES
 * Prints one JSON line: { bytes, sha256, width, height, fillerChunks, ms }.
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";

const [sourcePath, outPath, targetArg] = Deno.args;
const target = Number(targetArg);
const CHUNK_DATA = 8 * 1024 * 1024;
/** Length, type and CRC around each chunk's data. */
const CHUNK_OVERHEAD = 12;
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const FILLER_TYPE = new TextEncoder().encode("paDd");

const t0 = performance.now();
const source = await Deno.readFile(sourcePath);
const view = new DataView(source.buffer, source.byteOffset, source.byteLength);
const ihdrEnd = 8 + CHUNK_OVERHEAD + 13;
if (
  !SIGNATURE.every((b, i) => source[i] === b) || view.getUint32(8) !== 13 ||
  new TextDecoder().decode(source.subarray(12, 16)) !== "IHDR"
) {
  throw new Error(`${sourcePath} is not a PNG starting with IHDR`);
}
if (target < source.byteLength + CHUNK_OVERHEAD) throw new Error("target smaller than the source");

const out = await Deno.open(outPath, { write: true, create: true, truncate: true });
const hash = createHash("sha256");
let written = 0;
async function put(bytes: Uint8Array) {
  hash.update(bytes);
  for (let at = 0; at < bytes.byteLength;) at += await out.write(bytes.subarray(at));
  written += bytes.byteLength;
}

// Filler is pseudo-random (xorshift32), so nothing on the way can shrink it.
let state = 0x9e3779b9;
const words = new Uint32Array(CHUNK_DATA / 4);
const filler = new Uint8Array(words.buffer);
function refill() {
  for (let i = 0; i < words.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    words[i] = state;
  }
}

async function putFiller(dataBytes: number) {
  refill();
  const data = filler.subarray(0, dataBytes);
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, dataBytes);
  head.set(FILLER_TYPE, 4);
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32(data, crc32(FILLER_TYPE)));
  await put(head);
  await put(data);
  await put(crc);
}

try {
  await put(source.subarray(0, ihdrEnd));
  let rest = target - source.byteLength;
  let fillerChunks = 0;
  while (rest > 0) {
    let data = Math.min(CHUNK_DATA, rest - CHUNK_OVERHEAD);
    // Leave either nothing or room for a whole (possibly empty) chunk after this one.
    const after = rest - CHUNK_OVERHEAD - data;
    if (after > 0 && after < CHUNK_OVERHEAD) data -= CHUNK_OVERHEAD;
    await putFiller(data);
    fillerChunks++;
    rest -= CHUNK_OVERHEAD + data;
  }
  await put(source.subarray(ihdrEnd));
  await out.sync();
  if (written !== target) throw new Error(`wrote ${written} bytes, meant ${target}`);
  console.log(JSON.stringify({
    bytes: written,
    sha256: hash.digest("hex"),
    width: view.getUint32(16),
    height: view.getUint32(20),
    fillerChunks,
    ms: performance.now() - t0,
  }));
} finally {
  out.close();
}

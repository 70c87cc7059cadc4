/**
 * Generates the ingest image set described by FIXTURE_SPEC into DIR (img/, r/, tiny.png,
 * manifest.json last). Real, decodable images of every accepted format, via
 * tests/support/images.ts. Deterministic for the spec's seed.
 *
 * Usage: deno run --allow-read --allow-write --allow-env --allow-sys --allow-ffi make_fixtures.ts DIR
 */
import { makeImage } from "../../tests/support/images.ts";
import type { ImageFormat } from "../../services/image/types.ts";
import { FIXTURE_SPEC, type FixtureFile, type FixtureManifest } from "../lib/fixtures.ts";

const dir = Deno.args[0];
const EXT: Record<ImageFormat, string> = {
  jpeg: "jpg",
  png: "png",
  gif: "gif",
  webp: "webp",
  avif: "avif",
  bmp: "bmp",
  tiff: "tif",
  ico: "ico",
};
/** Encoded bytes per pixel of pure noise (tests/support/images.ts measured these). */
const NOISE_BPP: Partial<Record<ImageFormat, number>> = {
  jpeg: 0.64,
  png: 3.0,
  gif: 1.15,
  webp: 0.68,
  avif: 0.49,
  tiff: 4.1,
};
const ASPECTS = [1, 4 / 3, 3 / 2, 16 / 9, 3 / 4, 2 / 3];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(FIXTURE_SPEC.seed);
const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

function pickFormat(): ImageFormat {
  const entries = Object.entries(FIXTURE_SPEC.formats) as [ImageFormat, number][];
  let r = rand() * entries.reduce((a, [, w]) => a + w, 0);
  for (const [f, w] of entries) {
    if ((r -= w) < 0) return f;
  }
  return entries[0][0];
}

interface Plan {
  path: string;
  format: ImageFormat;
  width: number;
  height: number;
  targetBytes: number;
  seed: number;
}

function dims(pixels: number): { width: number; height: number } {
  const aspect = ASPECTS[Math.floor(rand() * ASPECTS.length)];
  const width = Math.max(16, Math.round(Math.sqrt(pixels * aspect)));
  return { width, height: Math.max(16, Math.round(pixels / width)) };
}

function plan(i: number): Plan {
  const s = FIXTURE_SPEC;
  const large = rand() < s.largeShare;
  const targetBytes = Math.round(
    large
      ? s.largeMin + rand() * (s.largeMax - s.largeMin)
      : Math.min(300_000, Math.max(3_000, s.medianBytes * Math.exp(s.sigma * normal()))),
  );
  let format = pickFormat();
  if (format === "ico" && targetBytes > 150_000) format = "png";
  let size: { width: number; height: number };
  if (format === "bmp") {
    size = dims(((targetBytes - 54) / 3) * (0.85 + 0.15 * rand()));
  } else if (format === "ico") {
    const side = Math.min(256, Math.round(Math.sqrt((targetBytes / 4) * (1.4 + 0.6 * rand()))));
    size = { width: side, height: side };
  } else {
    size = dims((targetBytes / NOISE_BPP[format]!) * (1.4 + 1.4 * rand()));
  }
  const name = `${String(i).padStart(4, "0")}.${EXT[format]}`;
  return { path: `/img/${name}`, format, ...size, targetBytes, seed: i + 1 };
}

async function make(p: Plan): Promise<FixtureFile> {
  const bytes = await makeImage(p.format, {
    width: p.width,
    height: p.height,
    targetBytes: p.targetBytes,
    seed: p.seed,
  });
  await Deno.writeFile(`${dir}${p.path}`, bytes);
  return { path: p.path, format: p.format, bytes: bytes.length, width: p.width, height: p.height };
}

const t0 = performance.now();
await Deno.mkdir(`${dir}/img`, { recursive: true });
await Deno.mkdir(`${dir}/r`, { recursive: true });
const plans = Array.from({ length: FIXTURE_SPEC.count }, (_, i) => plan(i));
const files: FixtureFile[] = new Array(plans.length);
let next = 0;
await Promise.all(Array.from({ length: 4 }, async () => {
  while (next < plans.length) {
    const i = next++;
    files[i] = await make(plans[i]);
  }
}));
const r = FIXTURE_SPEC.retrieval;
const retrieval = await make({
  path: `/r/retrieval.${EXT[r.format]}`,
  format: r.format,
  width: r.width,
  height: r.height,
  targetBytes: r.targetBytes,
  seed: 424242,
});
await Deno.writeFile(`${dir}/tiny.png`, await makeImage("png", { width: 1, height: 1 }));
const manifest: FixtureManifest = {
  spec: FIXTURE_SPEC,
  files,
  retrieval,
  generatedMs: performance.now() - t0,
};
await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(manifest));
console.log(JSON.stringify({ count: files.length, ms: manifest.generatedMs }));

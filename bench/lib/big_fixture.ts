/**
 * The one very large image of the `rss` benchmark: a real PNG of the fixture set grown to 500 MB
 * with filler chunks (bench/children/make_big_png.ts). Generated once into
 * bench/.out/fixtures/big-v<version>/ and reused while its spec and source are unchanged; the
 * origin streams it from disk.
 */
import type { FixtureManifest } from "./fixtures.ts";
import { OUT, type Resources, runDenoJson } from "./proc.ts";

export const BIG_SPEC = { version: 1, bytes: 500_000_000 };
export const BIG_DIR = `${OUT}/fixtures/big-v${BIG_SPEC.version}`;
const NAME = "big.png";

export interface BigFixture {
  spec: typeof BIG_SPEC;
  /** The small fixture it was grown from, e.g. `/img/0003.png`, and that file's size. */
  source: { path: string; bytes: number };
  /** Directory to give the origin as --stream; the file is `name` in it. */
  dir: string;
  name: string;
  bytes: number;
  sha256: string;
  width: number;
  height: number;
}

async function cached(source: BigFixture["source"]): Promise<BigFixture | null> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(`${BIG_DIR}/big.json`)) as BigFixture;
    const same = JSON.stringify([meta.spec, meta.source]) === JSON.stringify([BIG_SPEC, source]);
    if (!same || (await Deno.stat(`${BIG_DIR}/${NAME}`)).size !== meta.bytes) return null;
    return meta;
  } catch {
    return null;
  }
}

export async function ensureBigFixture(
  res: Resources,
  log: (s: string) => void,
  fixtures: { dir: string; manifest: FixtureManifest },
): Promise<BigFixture> {
  const png = fixtures.manifest.files.find((f) => f.format === "png");
  if (!png) throw new Error("the fixture set has no PNG to grow");
  const source = { path: png.path, bytes: png.bytes };
  const hit = await cached(source);
  if (hit) return hit;
  log(`writing a ${BIG_SPEC.bytes / 1e6} MB PNG into ${BIG_DIR} (once) ...`);
  await Deno.remove(BIG_DIR, { recursive: true }).catch(() => {});
  await Deno.mkdir(BIG_DIR, { recursive: true });
  const made = await runDenoJson<Omit<BigFixture, "spec" | "source" | "dir" | "name">>(
    res,
    "make-big-png",
    [
      "run",
      `--allow-read=${fixtures.dir}`,
      `--allow-write=${BIG_DIR}`,
      "bench/children/make_big_png.ts",
      `${fixtures.dir}${png.path}`,
      `${BIG_DIR}/${NAME}`,
      String(BIG_SPEC.bytes),
    ],
    5 * 60_000,
  );
  const meta: BigFixture = {
    spec: BIG_SPEC,
    source,
    dir: BIG_DIR,
    name: NAME,
    bytes: made.bytes,
    sha256: made.sha256,
    width: made.width,
    height: made.height,
  };
  // Written last: its presence means the image is complete.
  await Deno.writeTextFile(`${BIG_DIR}/big.json`, JSON.stringify(meta, null, 2));
  return meta;
}

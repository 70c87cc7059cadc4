/**
 * The ingest image set: generated once (in a child process, with sharp) and cached under
 * bench/.out/fixtures/<spec>/ until the spec below changes.
 */
import type { ImageFormat } from "../../services/image/types.ts";
import { OUT, type Resources, runDenoJson } from "./proc.ts";

export const FIXTURE_SPEC = {
  version: 1,
  count: 2000,
  /** Log-normal sizes around this median... */
  medianBytes: 40_000,
  sigma: 0.55,
  /** ...plus this share of images near 500 KB. */
  largeShare: 0.02,
  largeMin: 400_000,
  largeMax: 500_000,
  /** Relative weights of the formats. */
  formats: { jpeg: 30, png: 18, webp: 15, gif: 8, avif: 7, bmp: 7, tiff: 7, ico: 8 } as Record<
    ImageFormat,
    number
  >,
  /** The single image the retrieval benchmark serves. */
  retrieval: { format: "jpeg" as ImageFormat, width: 400, height: 300, targetBytes: 40_000 },
  seed: 20261123,
};

export interface FixtureFile {
  /** Path on the origin, e.g. `/img/0001.jpg`. */
  path: string;
  format: ImageFormat;
  bytes: number;
  width: number;
  height: number;
}

export interface FixtureManifest {
  spec: typeof FIXTURE_SPEC;
  files: FixtureFile[];
  retrieval: FixtureFile;
  generatedMs: number;
}

export const FIXTURE_DIR = `${OUT}/fixtures/v${FIXTURE_SPEC.version}-${FIXTURE_SPEC.count}`;

async function readManifest(dir: string): Promise<FixtureManifest | null> {
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)) as FixtureManifest;
    if (JSON.stringify(m.spec) !== JSON.stringify(FIXTURE_SPEC)) return null;
    // Spot-check that the files are still there and complete.
    for (const f of [m.files[0], m.files.at(-1)!, m.retrieval]) {
      if ((await Deno.stat(`${dir}${f.path}`)).size !== f.bytes) return null;
    }
    return m;
  } catch {
    return null;
  }
}

/** The cached image set, generated first when missing or stale. */
export async function ensureFixtures(
  res: Resources,
  log: (s: string) => void,
): Promise<{ dir: string; manifest: FixtureManifest; generated: boolean }> {
  const cached = await readManifest(FIXTURE_DIR);
  if (cached) return { dir: FIXTURE_DIR, manifest: cached, generated: false };
  log(`generating ${FIXTURE_SPEC.count} fixture images into ${FIXTURE_DIR} (once) ...`);
  await Deno.remove(FIXTURE_DIR, { recursive: true }).catch(() => {});
  await runDenoJson(res, "make-fixtures", [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-sys",
    "--allow-ffi",
    "bench/children/make_fixtures.ts",
    FIXTURE_DIR,
  ], 10 * 60_000);
  const manifest = await readManifest(FIXTURE_DIR);
  if (!manifest) throw new Error("fixture generation left no valid manifest");
  return { dir: FIXTURE_DIR, manifest, generated: true };
}

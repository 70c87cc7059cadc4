/**
 * sharp is a native addon: it may be missing for the platform, or refused
 * (Deno needs --allow-ffi to load it). It is imported on demand so that
 * without it the service still runs and only transforms answer 501.
 */
export type Sharp = typeof import("sharp").default;

/** Imports the module; replaced in tests by one that throws. */
export type SharpImporter = () => Promise<{ default: Sharp }>;

export const importSharp: SharpImporter = () => import("sharp");

/** sharp, or why it could not be loaded. */
export async function loadSharp(
  importer: SharpImporter = importSharp,
): Promise<{ sharp: Sharp } | { error: string }> {
  try {
    const sharp = (await importer()).default;
    // Results are cached as blobs; libvips' own cache of decoded inputs
    // would only hold memory that the serving cache needs.
    sharp.cache(false);
    return { sharp };
  } catch (err) {
    return { error: (err as Error).message.split("\n")[0] };
  }
}

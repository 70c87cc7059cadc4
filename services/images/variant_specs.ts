import type { VariantSpec } from "../store/records.ts";

/**
 * Most variant specs one image keeps. Each job adds at most 8; beyond this
 * the oldest names go, so a record stays far below KV's value limit
 * however many jobs name it.
 */
export const MAX_VARIANTS_PER_IMAGE = 16;

/**
 * The specs an image keeps after a job asks for `wanted`: a spec of the
 * same name is replaced, new names are added after the existing ones.
 */
export function mergeVariants(
  existing: VariantSpec[] | undefined,
  wanted: VariantSpec[],
): VariantSpec[] {
  const byName = new Map((existing ?? []).map((v) => [v.name, v]));
  for (const v of wanted) {
    byName.delete(v.name); // re-added last: the most recently asked for survive the cap
    byName.set(v.name, v);
  }
  return [...byName.values()].slice(-MAX_VARIANTS_PER_IMAGE);
}

/** True when `record` already keeps every spec of `wanted` exactly. */
export function hasVariants(existing: VariantSpec[] | undefined, wanted: VariantSpec[]): boolean {
  const byName = new Map((existing ?? []).map((v) => [v.name, v]));
  return wanted.every((v) => sameSpec(byName.get(v.name), v));
}

function sameSpec(a: VariantSpec | undefined, b: VariantSpec): boolean {
  return a !== undefined && a.w === b.w && a.h === b.h && a.fit === b.fit &&
    a.format === b.format && a.quality === b.quality && a.metadata === b.metadata;
}

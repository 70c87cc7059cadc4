/**
 * Named variants: parameter sets a job asks for at submission
 * (`"variants": [{ "name": "thumb", "w": 256, "format": "webp" }]`), made
 * through the same engine, pool and cache as query transforms, and served
 * by name (`variant=thumb`). A variant's format is concrete: it is made
 * ahead of any request, so there is no Accept to choose from.
 */
import { z } from "zod";
import { FITS, MAX_SIDE, OUTPUT_FORMATS } from "./formats.ts";
import { TransformError } from "./errors.ts";
import { requestErrors, resolveParams, type TransformParams, VARIANT_NAME } from "./params.ts";
import type { Transforms, TransformSource } from "./transforms.ts";

/** Most variants one job may ask for. */
export const MAX_VARIANTS = 8;

const side = z.number().int().min(1).max(MAX_SIDE);

/** The fields of one variant, without the checks across them (for documenting answers). */
export const VariantShape = z.object({
  name: z.string().regex(VARIANT_NAME, `must match ${VARIANT_NAME.source}`)
    .describe("Served as `variant=<name>`."),
  w: side.optional().describe("Width in pixels."),
  h: side.optional().describe("Height in pixels."),
  fit: z.enum(FITS).optional().describe("As the `fit` query parameter; default `inside`."),
  format: z.enum(OUTPUT_FORMATS).optional().describe(
    "Output format; default the source's (GIF becomes WebP, BMP/TIFF/ICO PNG).",
  ),
  quality: z.number().int().min(1).max(100).optional().describe("1-100, lossy formats only."),
  metadata: z.enum(["keep", "strip"]).optional().describe("Default `strip`."),
}).strict();

/** One variant as submitted. */
export const VariantSpecSchema = VariantShape.superRefine((v, ctx) => {
  if (v.w === undefined && v.h === undefined && v.format === undefined) {
    ctx.addIssue({ code: "custom", path: ["w"], message: "a variant needs w, h or format" });
  }
  const given = { has: (name: string) => (v as Record<string, unknown>)[name] !== undefined };
  for (const e of requestErrors(requestOf(v), Number.MAX_SAFE_INTEGER, given)) {
    ctx.addIssue({ code: "custom", path: [e.field], message: e.message });
  }
});

export type VariantSpec = z.infer<typeof VariantSpecSchema>;

/** A job's variants: at most eight, names unique. */
export const VariantSpecsSchema = z.array(VariantSpecSchema).max(MAX_VARIANTS).superRefine(
  (specs, ctx) => {
    const seen = new Set<string>();
    specs.forEach((s, i) => {
      if (seen.has(s.name)) {
        ctx.addIssue({ code: "custom", path: [i, "name"], message: `repeats '${s.name}'` });
      }
      seen.add(s.name);
    });
  },
);

const requestOf = (v: Omit<VariantSpec, "name">) => ({
  w: v.w ?? null,
  h: v.h ?? null,
  fit: v.fit ?? null,
  format: v.format ?? null,
  quality: v.quality ?? null,
  metadata: v.metadata ?? null,
});

/** The concrete parameters of a variant for a source (its key is that of the same query). */
export function variantParams(spec: VariantSpec, source: TransformSource): TransformParams {
  return resolveParams(requestOf(spec), source, null).params;
}

export type VariantResult =
  | {
    name: string;
    sha256: string;
    width: number;
    height: number;
    contentType: string;
    bytes: number;
  }
  | { name: string; error: string };

/** How long background work waits, in all, for a free place in the pool's queue. */
const BUSY_WAIT_MS = 30_000;
const BUSY_STEP_MS = 250;

/**
 * Makes (or finds cached) each variant of a source, one after the other so
 * that one job does not fill the pool's queue that requests share; a full
 * queue is waited out (up to 30 s) rather than failing background work.
 * Never throws for one variant: its result carries the error instead.
 */
export async function ensureVariants(
  transforms: Transforms,
  source: TransformSource,
  specs: VariantSpec[],
): Promise<VariantResult[]> {
  const results: VariantResult[] = [];
  for (const spec of specs) {
    const params = variantParams(spec, source);
    const deadline = Date.now() + BUSY_WAIT_MS;
    for (;;) {
      try {
        const { record } = await transforms.derive(source, params);
        results.push({
          name: spec.name,
          sha256: record.sha256,
          width: record.width,
          height: record.height,
          contentType: record.contentType,
          bytes: record.bytes,
        });
        break;
      } catch (err) {
        if (err instanceof TransformError && err.kind === "busy" && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, BUSY_STEP_MS));
          continue;
        }
        const fields = err instanceof TransformError && err.errors
          ? `: ${err.errors.map((e) => `${e.field} ${e.message}`).join("; ")}`
          : "";
        results.push({ name: spec.name, error: `${(err as Error).message}${fields}` });
        break;
      }
    }
  }
  return results;
}

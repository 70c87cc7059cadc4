/**
 * Transform parameters: read from a query, checked, then made concrete for
 * one source (defaults written out) and named by a canonical key, so that
 * requests meaning the same output share one cached derivative.
 */
import type { ImageFormat } from "../image/types.ts";
import { invalidParameters, type TransformFieldError } from "./errors.ts";
import {
  DEFAULT_QUALITY,
  defaultFormatFor,
  type Fit,
  FITS,
  MAX_SIDE,
  OUTPUT_FORMATS,
  type OutputFormat,
} from "./formats.ts";
import { chooseFormat } from "./negotiate.ts";

export type Metadata = "keep" | "strip";

/** Checked parameters, not yet resolved against a source. */
export interface TransformRequest {
  w: number | null;
  h: number | null;
  fit: Fit | null;
  format: OutputFormat | "auto" | null;
  quality: number | null;
  metadata: Metadata | null;
}

/** What the engine makes: every default explicit. */
export interface TransformParams {
  w: number | null;
  h: number | null;
  fit: Fit;
  format: OutputFormat;
  /** null for PNG (lossless). */
  quality: number | null;
  metadata: Metadata;
}

export type TransformAsk =
  | { kind: "params"; request: TransformRequest }
  | { kind: "variant"; name: string };

/** Query parameters that ask for a transform; any one of them does. */
export const TRANSFORM_PARAMS = ["w", "h", "fit", "format", "quality", "metadata", "variant"];

export const VARIANT_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** True when the query asks for a transform (cheap: the plain path calls it on every request). */
export function asksForTransform(query: URLSearchParams): boolean {
  for (const name of TRANSFORM_PARAMS) if (query.has(name)) return true;
  return false;
}

const POSITIVE = /^[1-9][0-9]{0,8}$/;

/**
 * Reads the transform parameters of a query, ignoring the route's own
 * (`routeParams`). Any other name is refused rather than ignored: a typo
 * (`widht=`) would otherwise answer a different image than meant.
 * Throws a `TransformError` ("invalid") listing every bad field.
 */
export function parseTransformQuery(
  query: URLSearchParams,
  opts: { maxPixels: number; routeParams: readonly string[] },
): TransformAsk {
  const errors: TransformFieldError[] = [];
  const values = new Map<string, string>();
  for (const [name, value] of query) {
    if (opts.routeParams.includes(name)) continue;
    if (!TRANSFORM_PARAMS.includes(name)) {
      errors.push({
        field: name,
        message: `is not a transform parameter (known: ${TRANSFORM_PARAMS.join(", ")})`,
      });
    } else if (values.has(name)) {
      errors.push({ field: name, message: "must be given once" });
    } else {
      values.set(name, value);
    }
  }
  const variant = values.get("variant");
  if (variant !== undefined) {
    if (!VARIANT_NAME.test(variant)) {
      errors.push({ field: "variant", message: `must match ${VARIANT_NAME.source}` });
    }
    for (const name of values.keys()) {
      if (name !== "variant") {
        errors.push({ field: name, message: "cannot be combined with variant" });
      }
    }
    if (errors.length) throw invalidParameters(errors);
    return { kind: "variant", name: variant };
  }

  const side = (name: "w" | "h"): number | null => {
    const raw = values.get(name);
    if (raw === undefined) return null;
    if (!POSITIVE.test(raw)) {
      errors.push({ field: name, message: "must be a whole number of pixels from 1" });
      return null;
    }
    return Number(raw);
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T | null => {
    const raw = values.get(name);
    if (raw === undefined) return null;
    if (!(allowed as readonly string[]).includes(raw)) {
      errors.push({ field: name, message: `must be one of: ${allowed.join(", ")}` });
      return null;
    }
    return raw as T;
  };
  let quality: number | null = null;
  const rawQuality = values.get("quality");
  if (rawQuality !== undefined) {
    if (!POSITIVE.test(rawQuality) || Number(rawQuality) > 100) {
      errors.push({ field: "quality", message: "must be a whole number from 1 to 100" });
    } else {
      quality = Number(rawQuality);
    }
  }
  const request: TransformRequest = {
    w: side("w"),
    h: side("h"),
    fit: oneOf("fit", FITS),
    format: oneOf("format", [...OUTPUT_FORMATS, "auto"] as const),
    quality,
    metadata: oneOf("metadata", ["keep", "strip"] as const),
  };
  errors.push(...requestErrors(request, opts.maxPixels, values));
  if (errors.length) throw invalidParameters(errors);
  return { kind: "params", request };
}

/**
 * Checks that need several fields, or the limits; shared by queries and
 * variant specs. `given` names the fields present (a bad value is absent
 * from `request` but must not add a second complaint).
 */
export function requestErrors(
  request: TransformRequest,
  maxPixels: number,
  given: { has(name: string): boolean } = { has: () => false },
  prefix = "",
): TransformFieldError[] {
  const errors: TransformFieldError[] = [];
  const { w, h } = request;
  for (const [name, value] of [["w", w], ["h", h]] as const) {
    if (value !== null && value > MAX_SIDE) {
      errors.push({ field: prefix + name, message: `must be at most ${MAX_SIDE}` });
    }
  }
  if (w !== null && h !== null && w <= MAX_SIDE && h <= MAX_SIDE && w * h > maxPixels) {
    errors.push({
      field: prefix + "w",
      message: `w × h is ${w * h} pixels, over the limit of ${maxPixels}`,
    });
  }
  if (request.fit !== null && w === null && h === null && !given.has("w") && !given.has("h")) {
    errors.push({ field: prefix + "fit", message: "needs w or h" });
  }
  if (request.quality !== null && request.format === "png") {
    errors.push({ field: prefix + "quality", message: "does not apply to png, which is lossless" });
  }
  return errors;
}

/**
 * Makes a request concrete for a source: the output format (asked, chosen
 * from `accept` for `auto`, else the source's default), the quality (the
 * format's default, none for PNG), the fit. With one side given, cover and
 * contain both mean "exactly this side, the other by the aspect ratio", so
 * they share one key. `varyAccept` is true when the answer depends on Accept.
 */
export function resolveParams(
  request: TransformRequest,
  source: { format: ImageFormat },
  accept: string | null,
): { params: TransformParams; varyAccept: boolean } {
  const format = request.format === "auto"
    ? chooseFormat(accept, source.format)
    : request.format ?? defaultFormatFor(source.format);
  const oneSide = (request.w === null) !== (request.h === null);
  const fit: Fit = request.w === null && request.h === null
    ? "inside"
    : oneSide && request.fit !== null && request.fit !== "inside"
    ? "cover"
    : request.fit ?? "inside";
  return {
    params: {
      w: request.w,
      h: request.h,
      fit,
      format,
      quality: DEFAULT_QUALITY[format] === null ? null : request.quality ?? DEFAULT_QUALITY[format],
      metadata: request.metadata ?? "strip",
    },
    varyAccept: request.format === "auto",
  };
}

/**
 * The canonical name of concrete parameters, part of the derivative's cache
 * key. The leading version changes whenever the engine's output for the
 * same parameters would (new encoder settings), so old derivatives are not
 * served for new requests.
 */
export function paramsKey(p: TransformParams): string {
  return `t1:w=${p.w ?? ""},h=${p.h ?? ""},fit=${p.fit},format=${p.format},` +
    `quality=${p.quality ?? ""},metadata=${p.metadata}`;
}

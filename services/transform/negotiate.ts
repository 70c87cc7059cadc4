/**
 * `format=auto`: the best format the client says it takes. Only media types
 * listed by name count (`image/avif`, `image/webp`): `*∕*` and `image/*`
 * are sent by clients that decode neither, so they do not.
 */
import type { ImageFormat } from "../image/types.ts";
import { MAY_ANIMATE, type OutputFormat } from "./formats.ts";

/** Media types named in an `Accept` value with a non-zero weight, lowercased. */
export function acceptedTypes(accept: string | null): Set<string> {
  const out = new Set<string>();
  if (!accept) return out;
  for (const part of accept.split(",")) {
    const [type, ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith("q="));
    if (type && !(q && Number(q.slice(2)) === 0)) out.add(type);
  }
  return out;
}

/**
 * AVIF if accepted, else WebP if accepted, else the source's format when it
 * is JPEG or PNG, else PNG (which keeps any transparency). GIF and WebP
 * sources skip AVIF: they may be animated, and AVIF output would lose the
 * frames. Decided from the source's format, not its pixels, so the choice
 * is known before decoding and each choice has one cached answer.
 */
export function chooseFormat(accept: string | null, source: ImageFormat): OutputFormat {
  const types = acceptedTypes(accept);
  if (!MAY_ANIMATE.has(source) && types.has("image/avif")) return "avif";
  if (types.has("image/webp")) return "webp";
  if (source === "jpeg" || source === "png") return source;
  return "png";
}

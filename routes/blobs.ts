import type { BlobFact, BlobFacts } from "../services/blob_facts.ts";
import type { ImageContent } from "../services/image_content.ts";
import { deliver, type Representation } from "./delivery.ts";
import { problemAnswer } from "./problem.ts";
import { epochSeconds, httpDate } from "./delivery_date.ts";
import { ProblemError, validationProblem } from "./problem.ts";
import { Sha256Param } from "./blobs.routes.ts";
import { serveTransformed } from "./transformed.ts";
import { asksForTransform } from "../services/transform/params.ts";
import type { Transforms } from "../services/transform/transforms.ts";

/** Blobs are served at `BLOBS_PREFIX + sha256`, by {@link serveBlob}. */
export const BLOBS_PREFIX = "/blobs/";

/** A year, the longest RFC 9111 suggests: the bytes under a hash never change. */
export const BLOB_CACHE_CONTROL = "public, max-age=31536000, immutable";

export interface BlobDeps {
  refs: { count(sha256: string): Promise<number> };
  facts: BlobFacts;
  content: ImageContent;
  /** Null or absent when transforms are unavailable: they answer 501. */
  transforms?: Transforms | null;
}

/**
 * `GET` and `HEAD /blobs/{sha256}`: stored bytes by their hash, served
 * before Hono's router like `/images/content`, with the same delivery. Only
 * while something stored refers to the blob, and only as the image type its
 * bytes show.
 */
export async function serveBlob(req: Request, sha256: string, deps: BlobDeps): Promise<Response> {
  try {
    return await serve(req, sha256, deps);
  } catch (err) {
    if (err instanceof ProblemError) return problemAnswer(err);
    throw err;
  }
}

async function serve(req: Request, sha256: string, deps: BlobDeps): Promise<Response> {
  const param = Sha256Param.safeParse({ sha256 });
  if (!param.success) throw validationProblem("path parameters", param.error);
  if (await deps.refs.count(sha256) === 0) {
    throw new ProblemError(404, `No stored image refers to the blob ${sha256}.`);
  }
  const fact = await deps.facts.get(sha256);
  // Referenced, so its bytes were stored as an identified image: anything
  // else is damaged storage, the operator's problem (as missing bytes are
  // on /images/content), not an absence a cache should remember.
  if (fact === "missing") {
    throw new ProblemError(500, "The stored bytes of this blob are missing; run `deno task fsck`.");
  }
  if (fact === "not_an_image") {
    throw new ProblemError(
      500,
      "The stored bytes of this blob are not an identifiable image; run `deno task fsck`.",
    );
  }
  const query = new URL(req.url).searchParams;
  if (query.size > 0 && asksForTransform(query)) {
    if (query.has("variant")) {
      throw new ProblemError(400, "Named variants are served by /images/content, by URL.", [
        { field: "variant", message: "not a parameter of /blobs/{sha256}" },
      ], "validation-error");
    }
    return await serveTransformed(req, query, { sha256, ...fact }, deps.transforms, {
      routeParams: [],
      cacheControl: BLOB_CACHE_CONTROL,
      ...(fact.modified === null ? {} : { lastModified: fact.modified }),
    });
  }
  const blob = { sha256, bytes: fact.bytes };
  return await deliver(req, blobRepresentation(sha256, fact), (r) => deps.content.open(blob, r));
}

const built = new WeakMap<BlobFact, Representation>();

function blobRepresentation(sha256: string, fact: BlobFact): Representation {
  const known = built.get(fact);
  if (known) return known;
  const headers: Record<string, string> = {
    "Content-Type": fact.contentType,
    ETag: `"${sha256}"`,
    "Cache-Control": BLOB_CACHE_CONTROL,
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
  };
  if (fact.modified !== null) headers["Last-Modified"] = httpDate(fact.modified);
  const rep: Representation = {
    etag: `"${sha256}"`,
    modifiedSec: fact.modified === null ? null : epochSeconds(fact.modified),
    size: fact.bytes,
    headers,
  };
  built.set(fact, rep);
  return rep;
}

/**
 * What an origin said about caching a stored image: the validators a
 * refresh sends back (`ETag`, `Last-Modified`) and the freshness headers it
 * sent (`Cache-Control`, `Expires`), kept as the text the origin sent.
 */
export interface OriginCaching {
  etag?: string;
  lastModified?: string;
  cacheControl?: string;
  expires?: string;
  /**
   * The URL that answered with these headers, when a redirect made it
   * differ from the submitted one: the validators are sent to that hop only.
   */
  url?: string;
}

/** The validators a conditional request sends, and the hop they belong to. */
export interface Conditional {
  etag?: string;
  lastModified?: string;
  url: string;
}

/**
 * Longest header value kept. Real ones are under 100 characters; the bound
 * keeps an image record far below KV's 64 KiB value limit even with an
 * 8 KiB URL. A longer value is dropped, not cut: a cut validator never
 * matches and a cut Cache-Control can mean something else.
 */
export const MAX_CACHING_HEADER_CHARS = 1024;

/** Longest redirect target kept for the validators (as long as a submitted URL may be). */
export const MAX_CACHING_URL_CHARS = 8192;

// Header values are ByteStrings: the check only refuses control characters.
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

function keep(value: string | null): string | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (text === "" || text.length > MAX_CACHING_HEADER_CHARS || CONTROL.test(text)) {
    return undefined;
  }
  return text;
}

/**
 * The caching headers of a response (a 200, or a 304 whose headers update
 * the stored ones). A `Last-Modified` that is not a date is dropped: an
 * origin ignores an `If-Modified-Since` it cannot parse, so it would only
 * cost a full download while looking like a validator.
 */
export function cachingFrom(headers: Headers): OriginCaching {
  const found: OriginCaching = {};
  const etag = keep(headers.get("etag"));
  if (etag !== undefined) found.etag = etag;
  const lastModified = keep(headers.get("last-modified"));
  if (lastModified !== undefined && !Number.isNaN(Date.parse(lastModified))) {
    found.lastModified = lastModified;
  }
  const cacheControl = keep(headers.get("cache-control"));
  if (cacheControl !== undefined) found.cacheControl = cacheControl;
  const expires = keep(headers.get("expires"));
  if (expires !== undefined) found.expires = expires;
  return found;
}

/**
 * The stored headers updated by a 304's, as RFC 9111 section 4.3.4 asks:
 * each header the 304 carries replaces the stored one, the rest stay.
 */
export function mergeCaching(stored: OriginCaching, fresh: OriginCaching): OriginCaching {
  return { ...stored, ...fresh };
}

/**
 * The validators to send when refreshing, or null when there are none. The
 * hop is the absolute, normalised URL that gave them.
 */
export function conditionalFrom(
  caching: OriginCaching | undefined,
  submittedUrl: string,
): Conditional | null {
  if (!caching || (caching.etag === undefined && caching.lastModified === undefined)) return null;
  let url: string;
  try {
    url = new URL(caching.url ?? submittedUrl).href;
  } catch {
    return null;
  }
  return {
    url,
    ...(caching.etag === undefined ? {} : { etag: caching.etag }),
    ...(caching.lastModified === undefined ? {} : { lastModified: caching.lastModified }),
  };
}

/**
 * The weak comparison of RFC 9110 section 8.8.3.2, the one `If-None-Match`
 * uses: equal opaque tags, whatever their `W/` prefixes.
 */
export function etagsMatchWeakly(a: string, b: string): boolean {
  const opaque = (tag: string) => tag.startsWith("W/") ? tag.slice(2) : tag;
  return opaque(a) === opaque(b);
}

/**
 * The headers of a full answer, to keep with the image: `url` is added when
 * redirects made the answering URL differ from the submitted one. A hop
 * whose URL is too long to keep gets no validators (only a full download
 * is lost by that).
 */
export function keptFor(
  found: OriginCaching,
  finalUrl: string,
  submittedUrl: string,
): OriginCaching {
  let submitted: string | null = null;
  try {
    submitted = new URL(submittedUrl).href;
  } catch {
    // Not parsable: it could not have been fetched, so finalUrl differs.
  }
  if (finalUrl === submitted) return found;
  if (finalUrl.length <= MAX_CACHING_URL_CHARS) return { ...found, url: finalUrl };
  const { etag: _e, lastModified: _l, ...freshness } = found;
  return freshness;
}

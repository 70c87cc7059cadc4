/** The checks a submitted image URL must pass before it becomes a pending item. */

/** Longest accepted URL, in characters. */
export const MAX_URL_LENGTH = 8192;

/** Why `text` is not an acceptable image URL, or null when it is. */
export function urlProblem(text: string): string | null {
  if (text.length > MAX_URL_LENGTH) return `longer than ${MAX_URL_LENGTH} characters`;
  // The common case parses once: with an http(s) scheme written out, a URL
  // that parses is http(s).
  if (/^https?:/i.test(text)) return URL.canParse(text) ? null : "not an absolute URL";
  if (!URL.canParse(text)) return "not an absolute URL";
  const { protocol } = new URL(text);
  if (protocol !== "http:" && protocol !== "https:") {
    return `only http and https URLs are fetched, not ${protocol}`;
  }
  return null;
}

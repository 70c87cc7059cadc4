/** One page of a KV prefix scan, resumable after the last key part it returned. */
export interface KvPage<T> {
  entries: Deno.KvEntry<T>[];
  /** The last key part of this page when more entries follow, else null. */
  last: Deno.KvKeyPart | null;
}

/**
 * Lists up to `limit` entries under `prefix` whose next key part sorts after
 * `after` (before it, newest first, with `reverse`). Reads one entry more
 * than asked, so the last page says so instead of handing out a cursor to an
 * empty page.
 */
export async function listPage<T>(
  kv: Deno.Kv,
  prefix: Deno.KvKey,
  limit: number,
  after?: Deno.KvKeyPart,
  opts: { reverse?: boolean } = {},
): Promise<KvPage<T>> {
  // In reverse, "after" is the last key part listed, so the next page ends before it.
  const selector: Deno.KvListSelector = after === undefined
    ? { prefix }
    : opts.reverse
    ? { prefix, end: [...prefix, after] }
    : { prefix, start: [...prefix, successor(after)] };
  const entries: Deno.KvEntry<T>[] = [];
  const list = kv.list<T>(selector, { limit: limit + 1, reverse: opts.reverse });
  for await (const e of list) entries.push(e);
  if (entries.length <= limit) return { entries, last: null };
  entries.length = limit;
  return { entries, last: entries[limit - 1].key.at(-1)! };
}

/** The smallest key part that sorts after `part` (for the types used as cursors). */
function successor(part: Deno.KvKeyPart): Deno.KvKeyPart {
  if (typeof part === "string") return part + "\u0000";
  if (typeof part === "number") return Number.isInteger(part) ? part + 0.5 : part * (1 + 1e-15);
  throw new TypeError("unsupported cursor key part");
}

/** Cursors are opaque to clients: base64url of the last key part. */
export function encodeCursor(part: Deno.KvKeyPart | null): string | null {
  if (part === null) return null;
  const bytes = new TextEncoder().encode(JSON.stringify(part));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** Decodes a cursor; undefined when it is not one this service handed out. */
export function decodeCursor(cursor: string): Deno.KvKeyPart | undefined {
  try {
    const b64 = cursor.replaceAll("-", "+").replaceAll("_", "/");
    const text = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    const part = JSON.parse(text);
    return typeof part === "string" || (typeof part === "number" && Number.isFinite(part))
      ? part
      : undefined;
  } catch {
    return undefined;
  }
}

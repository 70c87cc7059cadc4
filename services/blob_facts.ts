import type { BlobStore } from "./blobs/blob_store.ts";
import { SNIFF_LIMIT_BYTES } from "./fetch/guarded_body.ts";
import type { ImageContent } from "./image_content.ts";
import { sniffImage } from "./image/sniff.ts";
import type { ImageFormat } from "./image/types.ts";

/** What serving a blob by its hash needs to know, read from the blob itself. */
export interface BlobFact {
  bytes: number;
  /** Epoch milliseconds the file was written, when storage knows it. */
  modified: number | null;
  format: ImageFormat;
  contentType: string;
  width: number;
  height: number;
}

/** Facts kept; each is a few hundred bytes. */
const MAX_FACTS = 10_000;

/**
 * Size, write time and image type of stored blobs, the type sniffed from
 * the blob's first bytes (as the download was: up to 1 MiB, so every stored
 * image is identified again). Blobs never change under their hash, so a
 * fact is kept (bounded, oldest out) and the bytes are read once; failures
 * are not kept, so a repaired blob is seen at once.
 */
export class BlobFacts {
  readonly #facts = new Map<string, BlobFact>();

  constructor(private readonly blobs: BlobStore, private readonly content: ImageContent) {}

  /** The blob's fact; `missing` when storage has no such file, `not_an_image` when its bytes are none. */
  async get(sha256: string): Promise<BlobFact | "missing" | "not_an_image"> {
    const known = this.#facts.get(sha256);
    if (known) return known;
    const stat = await this.blobs.stat(sha256);
    if (!stat) return "missing";
    const blob = { sha256, bytes: stat.bytes };
    const headBytes = Math.min(stat.bytes, SNIFF_LIMIT_BYTES);
    // Small blobs are read whole, through the content cache that serves them next.
    const body = await this.content.open(
      blob,
      headBytes > 0 && headBytes < stat.bytes ? { start: 0, end: headBytes - 1 } : undefined,
    );
    if (!body) return "missing";
    const head = body instanceof Uint8Array ? body : await readAll(body, headBytes);
    const sniffed = sniffImage(head.subarray(0, headBytes), true);
    if (sniffed.kind !== "image") return "not_an_image";
    const fact: BlobFact = {
      bytes: stat.bytes,
      modified: stat.modified?.getTime() ?? null,
      format: sniffed.info.format,
      contentType: sniffed.info.contentType,
      width: sniffed.info.width,
      height: sniffed.info.height,
    };
    this.#facts.set(sha256, fact);
    if (this.#facts.size > MAX_FACTS) this.#facts.delete(this.#facts.keys().next().value!);
    return fact;
  }
}

async function readAll(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const out = new Uint8Array(limit);
  let length = 0;
  for await (const chunk of stream) {
    const part = chunk.subarray(0, limit - length);
    out.set(part, length);
    length += part.byteLength;
    if (length >= limit) break;
  }
  return out.subarray(0, length);
}

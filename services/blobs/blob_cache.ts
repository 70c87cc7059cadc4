/**
 * Keeps recently served small blobs in memory, least recently used first out.
 * Blobs are content-addressed, so a cached copy can never be stale: the only
 * cost is memory, bounded by `maxBytes`.
 */
export class BlobCache {
  readonly #entries = new Map<string, Uint8Array>();
  #bytes = 0;

  constructor(readonly maxBytes: number, readonly maxItemBytes: number) {}

  /** Whether a blob of this size is worth caching at all. */
  accepts(size: number): boolean {
    return size <= this.maxItemBytes && size <= this.maxBytes;
  }

  get(sha256: string): Uint8Array | undefined {
    const hit = this.#entries.get(sha256);
    if (hit) {
      // Re-insert: Map order is the recency order.
      this.#entries.delete(sha256);
      this.#entries.set(sha256, hit);
    }
    return hit;
  }

  set(sha256: string, bytes: Uint8Array): void {
    if (!this.accepts(bytes.byteLength) || this.#entries.has(sha256)) return;
    this.#entries.set(sha256, bytes);
    this.#bytes += bytes.byteLength;
    for (const [key, value] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(key);
      this.#bytes -= value.byteLength;
    }
  }

  delete(sha256: string): void {
    const hit = this.#entries.get(sha256);
    if (!hit) return;
    this.#entries.delete(sha256);
    this.#bytes -= hit.byteLength;
  }

  get size(): number {
    return this.#bytes;
  }
}

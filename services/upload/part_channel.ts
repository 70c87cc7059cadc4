/**
 * Turns a pushed part body (the multipart reader writes into it) into the
 * pulled stream the blob store reads, one chunk at a time: `write` resolves
 * only when the reader asks for the next chunk, so the upload moves at the
 * pace of the disk and holds one chunk in memory.
 */
import type { PartSink } from "../intake/multipart.ts";

export class PartChannel implements PartSink, AsyncIterable<Uint8Array> {
  #chunk: Uint8Array | null = null;
  #ended = false;
  #error: unknown = null;
  /** Wakes the reader waiting for a chunk or the end. */
  #wakeReader: (() => void) | null = null;
  /** Resolves (or rejects) the writer waiting for its chunk to be taken. */
  #release: { resolve(): void; reject(err: unknown): void } | null = null;

  write(bytes: Uint8Array): Promise<void> {
    if (this.#error !== null) return Promise.reject(this.#error);
    this.#chunk = bytes;
    this.#wake();
    return new Promise((resolve, reject) => {
      this.#release = { resolve, reject };
    });
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  /** Stops both sides with `err`: the reader throws it, the writer's promise rejects with it. */
  fail(err: unknown): void {
    if (this.#error !== null) return;
    this.#error = err;
    this.#release?.reject(err);
    this.#release = null;
    this.#wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (;;) {
        while (this.#chunk === null && !this.#ended && this.#error === null) {
          await new Promise<void>((resolve) => this.#wakeReader = resolve);
        }
        if (this.#error !== null) throw this.#error;
        if (this.#chunk === null) return;
        const chunk = this.#chunk;
        this.#chunk = null;
        yield chunk;
        // Asked for the next chunk: this one was dealt with.
        this.#release?.resolve();
        this.#release = null;
      }
    } finally {
      // The reader gave up (or failed): a writer must not wait forever.
      this.fail(new Error("the upload's reader stopped"));
    }
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = null;
    wake?.();
  }
}

/**
 * Where image bytes live. Content-addressed by SHA-256 so identical bytes
 * from different URLs are kept once. Kept small so an S3-compatible store can
 * implement it without routes or the worker noticing.
 */

/**
 * A body that has been read and hashed and is on its way to temporary
 * storage; not visible under its hash until committed.
 */
export interface StagedBlob {
  readonly sha256: string;
  readonly bytes: number;
  /**
   * Makes the bytes durable (fsync) and readable under `sha256`; rejects if
   * they could not be written (the temporary bytes are then gone). Idempotent.
   */
  commit(): Promise<void>;
  /** Drops the temporary bytes. Safe to call after a failed stage or twice. */
  discard(): Promise<void>;
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobStore {
  /**
   * Streams `body` towards temporary storage while hashing it, resolving once
   * the body is read (writing may go on until `commit`). Rejects (and leaves
   * nothing behind) when the stream errors; the error is passed through.
   * The store owns each chunk once it has been yielded: the producer must
   * not touch it again (the disk store hands whole buffers to another
   * thread without copying them).
   */
  stage(body: AsyncIterable<Uint8Array>): Promise<StagedBlob>;
  /** The stored bytes (or a range of them), or null when absent. */
  get(sha256: string, range?: ByteRange): Promise<ReadableStream<Uint8Array> | null>;
  /** Size and last write time of a stored blob, or null when absent. */
  stat(sha256: string): Promise<{ bytes: number; modified: Date | null } | null>;
  /** Removes a stored blob; absent is not an error. */
  delete(sha256: string): Promise<void>;
  /** Every stored hash, in no particular order. */
  list(): AsyncIterable<string>;
}

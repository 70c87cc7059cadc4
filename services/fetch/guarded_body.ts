import { sniffImage } from "../image/sniff.ts";
import type { ImageInfo } from "../image/types.ts";
import type { AttemptControl, StallWatch } from "./attempt_control.ts";
import { type Decoder, decodeStream } from "./content_encoding.ts";

/** How much of the start of a body is kept for identifying the image. */
export const SNIFF_LIMIT_BYTES = 1024 * 1024;

/** What {@link guardBody} needs to know about the response and its limits. */
export interface GuardOptions {
  maxImageBytes: number;
  maxImagePixels: number;
  /** Declared length, compared with what arrives when there is no Content-Encoding. */
  contentLength: number | null;
  decoder: Decoder | null;
}

/** The checked body and, once it has been identified, what image it is. */
export interface GuardedBody {
  /** Read once. Throws a FetchFailure when a check fails. */
  chunks: AsyncIterable<Uint8Array>;
  /** Set once the header has been read and accepted. */
  info(): ImageInfo | null;
}

/**
 * Wraps a response body in the checks that must hold before a single byte
 * is accepted: no stall longer than the stall timeout, decoded size within
 * maxImageBytes, a recognised raster image whose header-declared pixel count
 * is within maxImagePixels, and a body as long as its Content-Length. The
 * chunks stop with an error (through `control`, which also aborts the
 * download) as soon as any check fails, so the blob store never commits a
 * partial or unwanted body and the rest of it is never read.
 *
 * An async generator rather than a ReadableStream: one stream layer fewer
 * per chunk is measurably cheaper when many downloads run at once.
 */
export function guardBody(
  body: ReadableStream<Uint8Array>,
  options: GuardOptions,
  control: AttemptControl,
  stall: StallWatch,
): GuardedBody {
  const raw = new RawBody(body, options, control, stall);
  // The plain path reads the response directly; only encoded bodies take the detour.
  const source: ChunkSource = options.decoder ? decodedSource(raw, options.decoder, control) : raw;
  const sniffer = new HeadSniffer(options, control);
  async function* checked(): AsyncGenerator<Uint8Array> {
    let total = 0;
    let ended = false;
    let failed = false;
    try {
      for (;;) {
        let chunk: Uint8Array | null;
        try {
          chunk = await source.read();
          if (chunk === null) {
            if (total === 0) throw control.fail("not_an_image", "the body is empty");
            sniffer.finish();
            ended = true;
            return;
          }
          total += chunk.length;
          if (total > options.maxImageBytes) {
            throw control.fail(
              "too_large",
              `body exceeds ${options.maxImageBytes} bytes${
                options.decoder ? " once decoded" : ""
              }`,
            );
          }
          sniffer.add(chunk);
        } catch (err) {
          failed = true;
          throw control.explain(
            err,
            () =>
              control.fail("storage_error", `unexpected error: ${(err as Error)?.message ?? err}`),
          );
        }
        yield chunk;
      }
    } finally {
      if (!ended) {
        // The consumer (blob store) gave up: abort the download with it.
        if (!failed) control.fail("storage_error", "the blob store stopped reading the body");
        // Stop reading the origin now.
        source.cancel();
      }
    }
  }
  return { chunks: checked(), info: () => sniffer.info };
}

/** Chunks in order; null at the end. Rejects with a FetchFailure. */
interface ChunkSource {
  read(): Promise<Uint8Array | null>;
  cancel(): void;
}

/** The raw (possibly still encoded) body, watched for stalls and truncation. */
class RawBody implements ChunkSource {
  /** True once the origin's body ended cleanly. */
  finished = false;
  #received = 0;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #options: GuardOptions;
  readonly #control: AttemptControl;
  readonly #stall: StallWatch;

  constructor(
    body: ReadableStream<Uint8Array>,
    options: GuardOptions,
    control: AttemptControl,
    stall: StallWatch,
  ) {
    this.#reader = body.getReader();
    this.#options = options;
    this.#control = control;
    this.#stall = stall;
  }

  async read(): Promise<Uint8Array | null> {
    let result: ReadableStreamReadResult<Uint8Array>;
    this.#stall.arm();
    try {
      result = await this.#reader.read();
    } catch (err) {
      // A reset or a body cut short (hyper notices a missing tail when
      // there is a Content-Length or chunked framing).
      throw this.#control.explain(err, () =>
        this.#control.fail(
          "truncated",
          `connection broke after ${this.#received} body bytes: ${errorText(err)}`,
        ));
    } finally {
      this.#stall.disarm();
    }
    if (result.done) {
      this.finished = true;
      const expected = this.#options.contentLength;
      if (this.#options.decoder === null && expected !== null && this.#received < expected) {
        throw this.#control.fail(
          "truncated",
          `body ended after ${this.#received} of ${expected} bytes`,
        );
      }
      return null;
    }
    this.#received += result.value.length;
    return result.value;
  }

  cancel(): void {
    if (!this.finished) this.#reader.cancel().catch(() => {});
  }
}

/** `raw` decoded; a decoder error becomes not_an_image, or truncated if the body had ended. */
function decodedSource(raw: RawBody, decoder: Decoder, control: AttemptControl): ChunkSource {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let c = await raw.read(); c !== null; c = await raw.read()) yield c;
  }
  const reader = decodeStream(chunks(), decoder).getReader();
  return {
    async read() {
      try {
        const r = await reader.read();
        return r.done ? null : r.value;
      } catch (err) {
        throw control.explain(
          err,
          () =>
            raw.finished
              ? control.fail("truncated", "the compressed body ended before its end marker")
              : control.fail("not_an_image", `the body does not decode as ${decoder}`),
        );
      }
    },
    cancel() {
      reader.cancel().catch(() => {});
      raw.cancel();
    },
  };
}

/** Collects the start of the body until sniffImage can decide what it is. */
class HeadSniffer {
  info: ImageInfo | null = null;
  #head = new Uint8Array(0);
  #length = 0;
  readonly #options: GuardOptions;
  readonly #control: AttemptControl;

  constructor(options: GuardOptions, control: AttemptControl) {
    this.#options = options;
    this.#control = control;
  }

  add(chunk: Uint8Array): void {
    if (this.info) return;
    const first = this.#length === 0;
    if (first) {
      // Usually the first chunk settles it: judge it in place, no copy.
      const head = chunk.subarray(0, SNIFF_LIMIT_BYTES);
      if (this.#judge(head, head.length >= SNIFF_LIMIT_BYTES)) return;
    }
    const part = chunk.subarray(0, SNIFF_LIMIT_BYTES - this.#length);
    if (this.#length + part.length > this.#head.length) {
      // Grow by doubling so a body dripped a byte at a time stays linear.
      const grown = new Uint8Array(
        Math.min(SNIFF_LIMIT_BYTES, Math.max(4096, (this.#length + part.length) * 2)),
      );
      grown.set(this.#head.subarray(0, this.#length));
      this.#head = grown;
    }
    this.#head.set(part, this.#length);
    this.#length += part.length;
    // The first chunk was already judged as it stands. At the limit, stop
    // waiting: the header had its chance.
    if (!first) {
      this.#judge(this.#head.subarray(0, this.#length), this.#length >= SNIFF_LIMIT_BYTES);
    }
  }

  /** The body ended: decide with what there is. */
  finish(): void {
    if (!this.info) this.#judge(this.#head.subarray(0, this.#length), true);
  }

  /** True once decided (accepted); throws when refused; false to wait for more. */
  #judge(head: Uint8Array, isComplete: boolean): boolean {
    const result = sniffImage(head, isComplete);
    if (result.kind === "need_more") {
      if (isComplete) throw this.#control.fail("not_an_image", "no image header found");
      return false;
    }
    if (result.kind === "rejected") throw this.#control.fail(result.reason, result.detail);
    const { width, height } = result.info;
    const pixels = width * height;
    if (pixels > this.#options.maxImagePixels) {
      throw this.#control.fail(
        "too_many_pixels",
        `${width}x${height} = ${pixels} pixels exceeds ${this.#options.maxImagePixels}`,
      );
    }
    this.info = result.info;
    this.#head = new Uint8Array(0); // no longer needed
    return true;
  }
}

function errorText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  return e?.cause?.message ?? e?.message ?? String(err);
}

import { ImageBodyCheck } from "../image/body_check.ts";

// Moved to image/body_check.ts with the checks; still reachable here for older importers.
export { SNIFF_LIMIT_BYTES } from "../image/body_check.ts";
import type { ImageInfo } from "../image/types.ts";
import type { AttemptControl, StallWatch } from "./attempt_control.ts";
import { type Decoder, decodeStream } from "./content_encoding.ts";

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
  const check = new ImageBodyCheck(
    options,
    (reason, detail) => control.fail(reason, detail),
    options.decoder ? " once decoded" : "",
  );
  async function* checked(): AsyncGenerator<Uint8Array> {
    let ended = false;
    let failed = false;
    try {
      for (;;) {
        let chunk: Uint8Array | null;
        try {
          chunk = await source.read();
          if (chunk === null) {
            check.finish();
            ended = true;
            return;
          }
          check.add(chunk);
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
  return { chunks: checked(), info: () => check.info };
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

function errorText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  return e?.cause?.message ?? e?.message ?? String(err);
}

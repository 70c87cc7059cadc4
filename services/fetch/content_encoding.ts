/** A DecompressionStream format name (Deno also accepts "brotli"). */
export type Decoder = "gzip" | "deflate" | "brotli";

/**
 * Maps a Content-Encoding header to the decoder that undoes it: null for no
 * encoding, `{ unsupported }` for anything else. The fetcher asks for
 * `identity`, but some origins compress anyway, and with an explicit
 * Accept-Encoding Deno's fetch hands the compressed bytes through untouched
 * (verified on 2.9.6), so decoding is ours to do.
 */
export function decoderFor(header: string | null): Decoder | null | { unsupported: string } {
  const value = (header ?? "").trim().toLowerCase();
  switch (value) {
    case "":
    case "identity":
      return null;
    case "gzip":
    case "x-gzip":
      return "gzip";
    case "deflate":
      return "deflate";
    case "br":
      return "brotli";
    default:
      // Includes stacked encodings ("gzip, br"): nobody serves images so.
      return { unsupported: value };
  }
}

/**
 * Largest compressed slice fed to the decoder at once. Deflate expands at
 * most about 1:1032, so this bounds the memory one decoded chunk of a
 * compression bomb can take (about 4 MiB) before the size limit sees it.
 */
const SLICE_BYTES = 4 * 1024;

/**
 * Decodes `source` with `decoder`, in small slices. Errors from `source`
 * pass through unchanged; a corrupt encoding errors with a TypeError.
 */
export function decodeStream(
  source: AsyncIterable<Uint8Array>,
  decoder: Decoder,
): ReadableStream<Uint8Array> {
  async function* sliced(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      for (let off = 0; off < chunk.length; off += SLICE_BYTES) {
        yield chunk.subarray(off, off + SLICE_BYTES);
      }
    }
  }
  // The DOM typing says BufferSource in; Uint8Array is one.
  const decompress = new DecompressionStream(
    decoder as CompressionFormat,
  ) as unknown as TransformStream<Uint8Array, Uint8Array>;
  return ReadableStream.from(sliced()).pipeThrough(decompress);
}

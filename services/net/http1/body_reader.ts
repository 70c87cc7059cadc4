import { type BufferedConn, Http1Error } from "./buffered_conn.ts";
import type { Framing } from "./response_head.ts";

/** Longest chunk-size line accepted (hex digits plus chunk extensions). */
const MAX_CHUNK_LINE = 4096;
/** Longest trailer section accepted after the last chunk. */
const MAX_TRAILER_BYTES = 16 * 1024;

/** Reads one message body off a connection; null once it has ended. */
export interface BodyReader {
  read(): Promise<Uint8Array | null>;
}

/** Reads exactly the body `framing` describes, leaving what follows it on the connection. */
export function bodyReader(conn: BufferedConn, framing: Framing): BodyReader {
  switch (framing.kind) {
    case "none":
      return { read: () => Promise.resolve(null) };
    case "length":
      return lengthReader(conn, framing.length);
    case "close":
      return { read: () => conn.read() };
    case "chunked":
      return chunkedReader(conn);
  }
}

/**
 * Largest buffer a body with a Content-Length is read into. Equal to the
 * disk blob store's write size, so that each full buffer is handed to its
 * writer thread as it is, without a copy.
 */
const SEGMENT_BYTES = 256 * 1024;

/**
 * The socket reads land straight in buffers of the body's own size (up to
 * SEGMENT_BYTES), and each read is yielded as a view of one: consecutive
 * views of a buffer let the consumer take it whole without copying. A
 * buffer is never written again once its last view has been yielded.
 */
function lengthReader(conn: BufferedConn, length: number): BodyReader {
  let left = length;
  let segment = new Uint8Array(0);
  // Kept apart from segment.length: a full segment may have been handed to
  // another thread, and a detached buffer's views report length 0.
  let size = 0;
  let filled = 0;
  return {
    async read() {
      if (left === 0) return null;
      if (filled === size) {
        size = Math.min(left, SEGMENT_BYTES);
        segment = new Uint8Array(size);
        filled = 0;
      }
      const n = await conn.readInto(segment.subarray(filled));
      if (n === null) {
        throw new Http1Error(`the body ended after ${length - left} of ${length} bytes`);
      }
      const view = segment.subarray(filled, filled + n);
      filled += n;
      left -= n;
      return view;
    },
  };
}

/** RFC 9112 section 7.1: size line, data, CRLF, ... a zero size, trailers, an empty line. */
function chunkedReader(conn: BufferedConn): BodyReader {
  let left = 0; // data bytes left in the current chunk
  let done = false;
  return {
    async read() {
      while (!done) {
        if (left > 0) {
          const bytes = await conn.read(left);
          if (bytes === null) {
            throw new Http1Error("the connection closed in the middle of a chunk");
          }
          left -= bytes.length;
          if (left === 0) await expectEmptyLine(conn);
          return bytes;
        }
        const line = await conn.readLine(MAX_CHUNK_LINE);
        const size = /^([0-9A-Fa-f]{1,13})[ \t]*(;.*)?$/.exec(line);
        if (!size) {
          throw new Http1Error(`invalid chunk size line ${JSON.stringify(line.slice(0, 40))}`);
        }
        left = parseInt(size[1], 16);
        if (left === 0) {
          await skipTrailers(conn);
          done = true;
        }
      }
      return null;
    },
  };
}

async function expectEmptyLine(conn: BufferedConn): Promise<void> {
  const line = await conn.readLine(2);
  if (line !== "") throw new Http1Error("chunk data is not followed by CRLF");
}

async function skipTrailers(conn: BufferedConn): Promise<void> {
  for (let total = 0;;) {
    const line = await conn.readLine(MAX_TRAILER_BYTES);
    if (line === "") return;
    total += line.length;
    if (total > MAX_TRAILER_BYTES) throw new Http1Error("the trailer section is too long");
  }
}

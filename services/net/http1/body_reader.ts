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

function lengthReader(conn: BufferedConn, length: number): BodyReader {
  let left = length;
  return {
    async read() {
      if (left === 0) return null;
      const bytes = await conn.read(left);
      if (bytes === null) {
        throw new Http1Error(`the body ended after ${length - left} of ${length} bytes`);
      }
      left -= bytes.length;
      return bytes;
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

/**
 * A keep-alive HTTP/1.1 origin written on raw TCP, with no HTTP library
 * between it and the wire, so a test sees exactly the request lines and
 * Host headers a client sent. Each answer is raw bytes chosen by `answer`.
 */
import { concat } from "./image_containers.ts";
import { bytes, type Origin, serveRaw, writeAll } from "./origin.ts";

export { concat };

/** One request as it arrived on the wire. */
export interface WireRequest {
  /** The request line, verbatim (`GET /a.png HTTP/1.1`). */
  line: string;
  /** Every Host field value sent (there must be exactly one). */
  hosts: string[];
  /** The head, lowercased field names, for other checks. */
  head: string;
  /** Which accepted connection (1-based) carried it. */
  connection: number;
}

export interface RecordingOrigin extends Origin {
  readonly seen: WireRequest[];
}

/**
 * `answer` gets the request line and returns the bytes to write back (a
 * whole response); the connection then stays open for the next request
 * unless the answer returns `close: true`.
 */
export function serveRecording(
  answer: (req: WireRequest) => { bytes: Uint8Array | string; close?: boolean },
): RecordingOrigin {
  const seen: WireRequest[] = [];
  let connections = 0;
  const origin = serveRaw(async (conn, signal) => {
    const id = ++connections;
    let buffered: Uint8Array = new Uint8Array(0);
    while (!signal.aborted) {
      const end = headEnd(buffered);
      if (end < 0) {
        const chunk = new Uint8Array(16 * 1024);
        const n = await conn.read(chunk).catch(() => null);
        if (n === null) return;
        buffered = concat(buffered, chunk.subarray(0, n));
        continue;
      }
      const head = new TextDecoder().decode(buffered.subarray(0, end));
      buffered = buffered.slice(end + 4);
      const lines = head.split("\r\n");
      const req: WireRequest = {
        line: lines[0],
        hosts: lines.slice(1).filter((l) => /^host:/i.test(l)).map((l) => l.slice(5).trim()),
        head: lines.map((l, i) => i === 0 ? l : l.replace(/^[^:]+/, (n) => n.toLowerCase()))
          .join("\n"),
        connection: id,
      };
      seen.push(req);
      const reply = answer(req);
      await writeAll(conn, typeof reply.bytes === "string" ? bytes(reply.bytes) : reply.bytes);
      if (reply.close) return;
    }
  }, { readRequest: false });
  return Object.assign(origin, { seen });
}

/** A complete `200` response with a Content-Length. */
export function ok(body: Uint8Array, type = "image/png"): Uint8Array {
  return concat(
    bytes(`HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ncontent-length: ${body.length}\r\n\r\n`),
    body,
  );
}

function headEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

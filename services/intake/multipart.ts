/**
 * A `multipart/form-data` reader (RFC 7578) that hands each part's body on
 * as it arrives, so a 20 MiB upload is never held whole. Only what this
 * service needs: part headers `Content-Disposition` (name, filename) and
 * `Content-Type`; no nested multiparts.
 */

/** The body is not well-formed multipart. */
export class MultipartError extends Error {}

export interface PartInfo {
  name: string;
  filename?: string;
  /** Lowercased media type without parameters, when the part had one. */
  contentType?: string;
}

/**
 * Receives one part's body; the chunks are the sink's to keep. A promise
 * returned by `write` or `end` holds the reader until it settles (so a
 * slow consumer slows the upload instead of filling memory); a rejection
 * stops the reading with that error.
 */
export interface PartSink {
  write(bytes: Uint8Array): void | Promise<void>;
  end(): void | Promise<void>;
}

const MAX_HEADER_BYTES = 16 * 1024;
const CRLF2 = new Uint8Array([13, 10, 13, 10]);
const utf8 = new TextDecoder();

/** The `boundary` parameter of a multipart content type, or null. */
export function boundaryOf(contentType: string): string | null {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : null;
}

/**
 * Reads `body` part by part: `onPart` gets each part's headers and returns
 * the sink for its body. Resolves when the closing delimiter was read.
 */
export async function readMultipart(
  body: AsyncIterable<Uint8Array>,
  boundary: string,
  onPart: (info: PartInfo) => PartSink,
): Promise<void> {
  // Every delimiter but the first follows a CRLF; a virtual CRLF before
  // the body lets the first one match the same pattern.
  const delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
  let buf: Uint8Array = new Uint8Array([13, 10]);
  let state: "preamble" | "after-delimiter" | "headers" | "body" = "preamble";
  let sink: PartSink | null = null;
  let done = false;
  /** Set by a step whose sink asked the reader to wait. */
  let waitFor: Promise<void> | undefined;

  const step = (): boolean => {
    switch (state) {
      case "preamble": {
        const at = indexOf(buf, delimiter);
        if (at < 0) {
          buf = buf.slice(Math.max(0, buf.length - delimiter.length + 1));
          return false;
        }
        buf = buf.subarray(at + delimiter.length);
        state = "after-delimiter";
        return true;
      }
      case "after-delimiter": {
        // `--` closes the body; otherwise optional whitespace, then CRLF.
        if (buf.length < 2) return false;
        if (buf[0] === 45 && buf[1] === 45) {
          done = true;
          return false;
        }
        let i = 0;
        while (i < buf.length && (buf[i] === 32 || buf[i] === 9)) i++;
        if (buf.length < i + 2) return false;
        if (buf[i] !== 13 || buf[i + 1] !== 10) throw new MultipartError("bad delimiter line");
        buf = buf.subarray(i + 2);
        state = "headers";
        return true;
      }
      case "headers": {
        const end = indexOf(buf, CRLF2);
        // A part with no headers starts straight with the blank line.
        const empty = buf.length >= 2 && buf[0] === 13 && buf[1] === 10;
        if (end < 0 && !empty) {
          if (buf.length > MAX_HEADER_BYTES) throw new MultipartError("part headers too long");
          return false;
        }
        const headEnd = empty ? 0 : end;
        sink = onPart(parseHeaders(buf.subarray(0, headEnd)));
        buf = buf.subarray(headEnd + (empty ? 2 : 4));
        state = "body";
        return true;
      }
      case "body": {
        const at = indexOf(buf, delimiter);
        if (at < 0) {
          // Keep what could be the start of a delimiter split across reads.
          const keep = Math.min(buf.length, delimiter.length - 1);
          if (buf.length > keep) waitFor = pending(sink!.write(buf.slice(0, buf.length - keep)));
          buf = buf.slice(buf.length - keep);
          return false;
        }
        const last = at > 0 ? pending(sink!.write(buf.slice(0, at))) : undefined;
        const ending = sink!;
        waitFor = last ? last.then(() => ending.end()) : pending(ending.end());
        sink = null;
        buf = buf.subarray(at + delimiter.length);
        state = "after-delimiter";
        return true;
      }
    }
  };

  for await (const chunk of body) {
    buf = concat(buf, chunk);
    for (let more = true; more && !done;) {
      more = step();
      if (waitFor) {
        const wait = waitFor;
        waitFor = undefined;
        await wait;
      }
    }
    if (done) break;
  }
  if (!done) throw new MultipartError("the body ends before the closing boundary");
}

/**
 * A sink that gathers a small text field (UTF-8) and hands it to `done`;
 * past `maxBytes` it throws `tooLong()`. `onBytes` sees the raw bytes too.
 */
export function textField(
  maxBytes: number,
  tooLong: () => Error,
  done: (text: string) => void,
  onBytes?: (bytes: Uint8Array) => void,
): PartSink {
  // Small by construction (maxBytes): growing it by copies costs little.
  let text: Uint8Array = new Uint8Array(0);
  return {
    write: (b) => {
      if (text.length + b.length > maxBytes) throw tooLong();
      onBytes?.(b);
      text = concat(text, b);
    },
    end: () => {
      done(utf8.decode(text));
    },
  };
}

/** The promise a sink returned, if it returned one. */
const pending = (r: void | Promise<void>) => r instanceof Promise ? r : undefined;

function parseHeaders(bytes: Uint8Array): PartInfo {
  let name: string | undefined;
  let filename: string | undefined;
  let contentType: string | undefined;
  // Browsers and curl send names in UTF-8; header syntax itself is ASCII.
  for (const line of utf8.decode(bytes).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const field = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (field === "content-disposition") {
      name = param(value, "name");
      filename = param(value, "filename");
    } else if (field === "content-type") {
      contentType = value.split(";")[0].trim().toLowerCase();
    }
  }
  if (name === undefined) throw new MultipartError("a part has no Content-Disposition name");
  return {
    name,
    ...(filename !== undefined ? { filename } : {}),
    ...(contentType ? { contentType } : {}),
  };
}

function param(value: string, key: string): string | undefined {
  const re = new RegExp(`;\\s*${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, "i");
  const m = re.exec(value);
  if (!m) return undefined;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  const last = hay.length - needle.length;
  for (let i = hay.indexOf(first); i >= 0 && i <= last; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

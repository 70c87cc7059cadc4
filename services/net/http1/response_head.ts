import { Http1Error, latin1 } from "./buffered_conn.ts";

/** The parsed status line and header fields of one response. */
export interface ResponseHead {
  /** Minor version of HTTP/1.x. */
  minor: number;
  status: number;
  statusText: string;
  headers: Headers;
}

/** How the body of a response is delimited (RFC 9112 section 6.3). */
export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

const STATUS_LINE = /^HTTP\/1\.(\d) (\d{3})(?: (.*))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Parses a response head (status line and fields, as read by BufferedConn.readHead). */
export function parseResponseHead(bytes: Uint8Array): ResponseHead {
  const lines = latin1(bytes).split("\n").map((l) => l.endsWith("\r") ? l.slice(0, -1) : l);
  if (lines.at(-1) === "") lines.pop();
  const status = STATUS_LINE.exec(lines[0] ?? "");
  if (!status) {
    throw new Http1Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]?.slice(0, 80))}`);
  }
  const fields: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      // obs-fold: RFC 9112 section 5.2 has a user agent replace it with a space.
      const last = fields.at(-1);
      if (!last) throw new Http1Error("the first header line is a continuation line");
      last[1] = `${last[1]} ${line.trim()}`.trim();
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    // Whitespace before the colon is how responses get smuggled past proxies: refuse it.
    if (!TOKEN.test(name)) {
      throw new Http1Error(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    fields.push([name, line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "")]);
  }
  const headers = new Headers();
  try {
    for (const [name, value] of fields) headers.append(name, value);
  } catch (err) {
    throw new Http1Error(`invalid header value: ${(err as Error).message}`);
  }
  return {
    minor: Number(status[1]),
    status: Number(status[2]),
    statusText: status[3] ?? "",
    headers,
  };
}

/**
 * The body's framing and whether the connection may carry another request
 * afterwards. Throws on framing a client must not guess at: conflicting
 * Content-Length values, or transfer codings it never asked for.
 */
export function framingOf(
  head: ResponseHead,
  method: string,
): { framing: Framing; reusable: boolean } {
  const connection = tokens(head.headers.get("connection"));
  let reusable = head.minor >= 1
    ? !connection.includes("close")
    : connection.includes("keep-alive");
  if (method === "HEAD" || head.status < 200 || head.status === 204 || head.status === 304) {
    return { framing: { kind: "none" }, reusable };
  }
  const te = head.headers.get("transfer-encoding");
  if (te !== null) {
    const codings = tokens(te);
    // No TE header is sent, so chunked is the only coding a server may use (RFC 9112 section 6.1).
    if (codings.length !== 1 || codings[0] !== "chunked") {
      throw new Http1Error(`unsupported Transfer-Encoding "${te.slice(0, 80)}"`);
    }
    // Content-Length beside it, or chunked from an HTTP/1.0 server: faulty framing, never reuse.
    if (head.headers.has("content-length") || head.minor === 0) reusable = false;
    return { framing: { kind: "chunked" }, reusable };
  }
  const cl = head.headers.get("content-length");
  if (cl !== null) {
    const values = new Set(cl.split(",").map((v) => v.trim()));
    const [value] = values;
    if (values.size !== 1 || !/^\d{1,15}$/.test(value)) {
      throw new Http1Error(`invalid Content-Length "${cl.slice(0, 80)}"`);
    }
    return { framing: { kind: "length", length: Number(value) }, reusable };
  }
  return { framing: { kind: "close" }, reusable: false };
}

function tokens(value: string | null): string[] {
  if (value === null) return [];
  return value.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t !== "");
}

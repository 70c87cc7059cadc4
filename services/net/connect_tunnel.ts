/** An address and port that passed the policy; the only place a socket may go. */
export interface PinnedTarget {
  /** IP literal, IPv6 without brackets. */
  address: string;
  port: number;
}

const MAX_HEAD_BYTES = 8 * 1024;
const HEAD_END = new TextEncoder().encode("\r\n\r\n");

/**
 * A tiny in-process HTTP CONNECT proxy on 127.0.0.1 that pins HTTPS.
 *
 * Why: Deno's `proxy: { transport: "tcp" }` client option pins plain HTTP
 * but, for an https URL, sends the request in clear text to the given
 * socket (verified on Deno 2.9.6), so it cannot pin HTTPS. A CONNECT proxy
 * can: fetch sends `CONNECT name:443` here, this tunnel dials the vetted
 * address instead of resolving the name, and TLS then runs end to end
 * between fetch and the origin, with SNI and certificate checks against the
 * URL's host name.
 *
 * Each pinned client authenticates with a random token (proxy basic auth)
 * that maps to its one vetted target, so the tunnel cannot be steered by the
 * CONNECT line or used by other local processes to reach anything else.
 */
export class ConnectTunnel {
  readonly #listener: Deno.Listener;
  readonly #targets = new Map<string, PinnedTarget>();
  readonly #conns = new Set<Deno.Conn>();
  readonly #connectTimeoutMs: number;
  readonly #accepting: Promise<void>;
  #closed = false;

  constructor(options: { connectTimeoutMs: number }) {
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#acceptLoop();
  }

  /** The loopback port fetch clients use as their proxy. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Returns a fresh token that tunnels to `target` and nowhere else. */
  register(target: PinnedTarget): string {
    const token = crypto.randomUUID().replaceAll("-", "");
    this.#targets.set(token, { ...target });
    return token;
  }

  /** Forgets a token; tunnels already open stay open until their client closes them. */
  unregister(token: string): void {
    this.#targets.delete(token);
  }

  /** Stops listening and cuts every open tunnel. Resolves when the accept loop has ended. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#listener.close();
      for (const conn of this.#conns) closeQuietly(conn);
      this.#conns.clear();
      this.#targets.clear();
    }
    return this.#accepting;
  }

  async #acceptLoop(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#closed) {
          closeQuietly(conn);
          continue;
        }
        this.#conns.add(conn);
        this.#serve(conn).catch(() => {}).finally(() => {
          this.#conns.delete(conn);
          closeQuietly(conn);
        });
      }
    } catch {
      // The listener was closed.
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    const { head, rest } = await readHead(client);
    const lines = head.split("\r\n");
    const [method, authority] = lines[0].split(" ");
    if (method !== "CONNECT" || !authority) return reply(client, "405 Method Not Allowed");
    const target = this.#targets.get(tokenFrom(lines) ?? "");
    if (!target) return reply(client, "407 Proxy Authentication Required");
    // fetch asks for the URL's port; the client for this token was made for
    // exactly that port, so a mismatch means something is confused: refuse.
    if (Number(authority.slice(authority.lastIndexOf(":") + 1)) !== target.port) {
      return reply(client, "403 Forbidden");
    }

    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#connectTimeoutMs);
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({
        hostname: target.address,
        port: target.port,
        signal: abort.signal,
      });
    } catch {
      return reply(client, "502 Bad Gateway");
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed) {
      closeQuietly(upstream);
      return;
    }
    this.#conns.add(upstream);
    try {
      await writeAll(
        client,
        new TextEncoder().encode("HTTP/1.1 200 Connection Established\r\n\r\n"),
      );
      if (rest.length > 0) await writeAll(upstream, rest);
      const up = client.readable.pipeTo(upstream.writable).catch(() => {});
      const down = upstream.readable.pipeTo(client.writable).catch(() => {});
      // Either side finishing ends the tunnel: TLS has its own close_notify,
      // so half-closed TCP is never needed here.
      await Promise.race([up, down]);
      closeQuietly(upstream);
      closeQuietly(client);
      await Promise.all([up, down]);
    } finally {
      this.#conns.delete(upstream);
      closeQuietly(upstream);
    }
  }
}

async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array }> {
  const buf = new Uint8Array(MAX_HEAD_BYTES);
  let filled = 0;
  while (filled < buf.length) {
    const n = await conn.read(buf.subarray(filled));
    if (n === null) throw new Error("client closed before sending a CONNECT request");
    filled += n;
    const end = indexOf(buf.subarray(0, filled), HEAD_END);
    if (end >= 0) {
      return {
        head: new TextDecoder().decode(buf.subarray(0, end)),
        rest: buf.slice(end + HEAD_END.length, filled),
      };
    }
  }
  throw new Error("CONNECT request head too large");
}

function tokenFrom(lines: string[]): string | null {
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (line.slice(0, colon).trim().toLowerCase() !== "proxy-authorization") continue;
    const [scheme, value] = line.slice(colon + 1).trim().split(/\s+/);
    if (scheme?.toLowerCase() !== "basic" || !value) return null;
    try {
      return atob(value).split(":")[0];
    } catch {
      return null;
    }
  }
  return null;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

async function reply(conn: Deno.Conn, status: string): Promise<void> {
  await writeAll(conn, new TextEncoder().encode(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\n\r\n`))
    .catch(() => {});
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

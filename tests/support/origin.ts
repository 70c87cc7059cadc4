/**
 * Test origins on loopback that count every TCP connection they accept, so a
 * test can prove a refused URL never opened a socket. Two kinds:
 * - {@link serveOrigin}: a well-behaved HTTP server (Deno.serve) behind a
 *   counting TCP relay;
 * - {@link serveRaw}: raw TCP for misbehaviour HTTP servers will not do
 *   (lying Content-Length, resets, drips, stalls).
 */

/**
 * A private CA and a certificate for `pinned.test` signed by it (valid until
 * 2126), made for these tests with openssl. Lets HTTPS pinning be tested on
 * loopback: trust `ca` in the connector, serve `cert`/`key`.
 */
export const TEST_TLS = {
  ca: `-----BEGIN CERTIFICATE-----
MIIBmDCCAT+gAwIBAgIUATlYuhanjxzTNDG68Qw3lLV6JKIwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaW5nZXN0IHRlc3QgQ0EwIBcNMjYxMTIzMTkwMjI5WhgPMjEy
NjEwMzAxOTAyMjlaMBkxFzAVBgNVBAMMDmluZ2VzdCB0ZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEyVm1b1/+5tO+ZYFbE/bL3nLRmH+LW0iqw87Vse5f
hLP7vuN6TjUM+tUfcXW2oHPxoT8X3AVSzTjjEGMCek9/maNjMGEwHQYDVR0OBBYE
FDKHSKGtbq/0ZqIPLiHjFFeNUucsMB8GA1UdIwQYMBaAFDKHSKGtbq/0ZqIPLiHj
FFeNUucsMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49
BAMCA0cAMEQCIG0rwLpXeA4xqrhzQA6KOw0piOekEh4/uTz3aW5qBjysAiAOMZE5
RLIgbK6K9crHXwoa1kw9V5igI7aSExFMc/6o/w==
-----END CERTIFICATE-----`,
  cert: `-----BEGIN CERTIFICATE-----
MIIBvzCCAWWgAwIBAgIUQfgrirGxVrieDrXYJSOJpYbkp5MwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaW5nZXN0IHRlc3QgQ0EwIBcNMjYxMTIzMTkwMjI5WhgPMjEy
NjEwMzAxOTAyMjlaMBYxFDASBgNVBAMMC3Bpbm5lZC50ZXN0MFkwEwYHKoZIzj0C
AQYIKoZIzj0DAQcDQgAEnPN1l9VyRCp/P0btTkwxmWvCGSkr7YjIe6Hbc/nuyx5X
PQp1kVAWSyDMbAmGjQ3mgrGkVp5a7jEl09BZzJ8Jb6OBizCBiDAWBgNVHREEDzAN
ggtwaW5uZWQudGVzdDAJBgNVHRMEAjAAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMA4G
A1UdDwEB/wQEAwIHgDAdBgNVHQ4EFgQULXvgyuTMw1vlMVPiGfx8Y20HHBcwHwYD
VR0jBBgwFoAUModIoa1ur/Rmog8uIeMUV41S5ywwCgYIKoZIzj0EAwIDSAAwRQIh
AIhq7DY+n2v1/weyvjsYkLD1LjMy01iOtBopz4UDG8f2AiB/EHEyuKqcRqC0la6Q
B2CY2Ng4aE8PcSbQuNTErwFFvQ==
-----END CERTIFICATE-----`,
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFW/IEG322eHz4B0o
vfnK/f+q+NTRwFurovh6VaLqfDmhRANCAASc83WX1XJEKn8/Ru1OTDGZa8IZKSvt
iMh7odtz+e7LHlc9CnWRUBZLIMxsCYaNDeaCsaRWnlruMSXT0FnMnwlv
-----END PRIVATE KEY-----`,
  /** The only name the certificate is valid for. */
  name: "pinned.test",
};

/** What the origin saw of one request. */
export interface SeenRequest {
  method: string;
  /** As Deno.serve reports it: built from the Host header (HTTP/1.1) or :authority (HTTP/2). */
  url: string;
  path: string;
  headers: Headers;
}

/** A listening test origin. */
export interface Origin {
  readonly port: number;
  /** TCP connections accepted so far (on 127.0.0.1, and on ::1 when that could be bound too). */
  readonly connections: number;
  /** Requests seen (serveOrigin only). */
  readonly requests: SeenRequest[];
  /** `http://127.0.0.1:<port><path>` */
  url(path?: string): string;
  /** Stops listening, cuts open connections, waits for everything to settle. */
  close(): Promise<void>;
}

/** Bytes of text, latin1. */
export function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const id = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(id);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Accepts on 127.0.0.1 (and the same port on ::1 when free), counting connections. */
class CountingListener {
  connections = 0;
  readonly port: number;
  readonly #listeners: Deno.Listener[];
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #loops: Promise<void>[];
  readonly #onConn: (conn: Deno.Conn, signal: AbortSignal) => Promise<void>;
  readonly #closing = new AbortController();

  constructor(onConn: (conn: Deno.Conn, signal: AbortSignal) => Promise<void>) {
    this.#onConn = onConn;
    const v4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (v4.addr as Deno.NetAddr).port;
    this.#listeners = [v4];
    try {
      // So `[::1]:<port>` would also be counted if anything ever connected there.
      this.#listeners.push(Deno.listen({ hostname: "::1", port: this.port }));
    } catch {
      // No IPv6 loopback or port taken: counting on 127.0.0.1 is what matters.
    }
    this.#loops = this.#listeners.map((l) => this.#accept(l));
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) {
        this.connections++;
        this.#conns.add(conn);
        const task = this.#onConn(conn, this.#closing.signal).catch(() => {}).finally(() => {
          this.#conns.delete(conn);
          closeQuietly(conn);
          this.#tasks.delete(task);
        });
        this.#tasks.add(task);
      }
    } catch {
      // Listener closed.
    }
  }

  async close(): Promise<void> {
    this.#closing.abort();
    for (const l of this.#listeners) closeQuietly(l);
    for (const c of this.#conns) closeQuietly(c);
    await Promise.all([...this.#loops, ...this.#tasks]);
  }
}

/**
 * A Deno.serve origin on a private loopback port, reached only through a
 * counting relay on the returned port. The handler sees the Host header the
 * client sent. With `tls`, it serves HTTPS with {@link TEST_TLS}.
 */
export function serveOrigin(
  handler: (req: Request) => Response | Promise<Response>,
  options: { tls?: boolean } = {},
): Origin {
  const requests: SeenRequest[] = [];
  const tls = options.tls ? { cert: TEST_TLS.cert, key: TEST_TLS.key } : {};
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {}, ...tls }, (req) => {
    requests.push({
      method: req.method,
      url: req.url,
      path: new URL(req.url).pathname,
      headers: req.headers,
    });
    return handler(req);
  });
  const inner = server.addr.port;
  const front = new CountingListener(async (conn) => {
    const upstream = await Deno.connect({ hostname: "127.0.0.1", port: inner });
    const up = conn.readable.pipeTo(upstream.writable).catch(() => {});
    const down = upstream.readable.pipeTo(conn.writable).catch(() => {});
    await Promise.race([up, down]);
    closeQuietly(conn);
    closeQuietly(upstream);
    await Promise.all([up, down]);
  });
  return {
    port: front.port,
    get connections() {
      return front.connections;
    },
    requests,
    url: (path = "/") => `http://127.0.0.1:${front.port}${path}`,
    async close() {
      await front.close();
      await server.shutdown();
    },
  };
}

/**
 * A raw TCP origin: `behaviour` gets each accepted connection (after the
 * request head was read unless `readRequest` is false) and writes whatever
 * bytes it likes. `signal` aborts when the origin closes so a dripping
 * behaviour can stop.
 */
export function serveRaw(
  behaviour: (conn: Deno.Conn, signal: AbortSignal, head: string) => Promise<void>,
  options: { readRequest?: boolean } = {},
): Origin {
  const listener = new CountingListener(async (conn, signal) => {
    const head = options.readRequest === false ? "" : await readHead(conn);
    await behaviour(conn, signal, head);
  });
  return {
    port: listener.port,
    get connections() {
      return listener.connections;
    },
    requests: [],
    url: (path = "/") => `http://127.0.0.1:${listener.port}${path}`,
    close: () => listener.close(),
  };
}

/** Reads up to the end of an HTTP request head. */
export async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(16 * 1024);
  let filled = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(filled));
    if (n === null) return new TextDecoder().decode(buf.subarray(0, filled));
    filled += n;
    const text = new TextDecoder().decode(buf.subarray(0, filled));
    if (text.includes("\r\n\r\n") || filled === buf.length) return text;
  }
}

/** Writes every byte. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array | string): Promise<void> {
  const b = typeof data === "string" ? bytes(data) : data;
  for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}

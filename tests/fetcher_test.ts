/**
 * The fetcher end to end: real fetch, real pinned connector, real listeners
 * on 127.0.0.1 that count connections. Nothing here sends a packet beyond
 * loopback: refused spellings are all loopback, and names go through an
 * injected resolver that answers 127.0.0.1.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import type { BlobStore, StagedBlob } from "../services/blobs/blob_store.ts";
import { DiskBlobStore } from "../services/blobs/disk_blob_store.ts";
import {
  type AttemptResult,
  createFetcher,
  type Fetcher,
  type FetchSettings,
  hostKey,
} from "../services/fetch/fetcher.ts";
import { type AddressPolicy, DEFAULT_POLICY } from "../services/net/address_policy.ts";
import { PinnedConnector } from "../services/net/connector.ts";
import { parseHostRules } from "../services/net/host_rules.ts";
import type { Resolver } from "../services/net/resolver.ts";
import { htmlBytes, makeImage, pngWithDimensions, svgBytes } from "./support/images.ts";
import { type Origin, serveOrigin, serveRaw, sleep, TEST_TLS, writeAll } from "./support/origin.ts";

const MiB = 1024 * 1024;
const PNG = new Uint8Array(await makeImage("png", { width: 64, height: 48 }));

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Blobs in memory; counts staged blobs that were neither committed nor discarded. */
class MemoryBlobs implements BlobStore {
  readonly stored = new Map<string, Uint8Array>();
  outstanding = 0;

  async stage(body: AsyncIterable<Uint8Array>): Promise<StagedBlob> {
    const hash = createHash("sha256");
    const parts: Uint8Array[] = [];
    for await (const chunk of body) {
      hash.update(chunk);
      parts.push(chunk);
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) all.set(p, (off += p.length) - p.length);
    const sha = hash.digest("hex");
    this.outstanding++;
    let settled = false;
    const settle = () => {
      if (!settled) this.outstanding--;
      settled = true;
    };
    return {
      sha256: sha,
      bytes: all.length,
      commit: () => {
        settle();
        this.stored.set(sha, all);
        return Promise.resolve();
      },
      discard: () => {
        settle();
        return Promise.resolve();
      },
    };
  }
  get(sha: string) {
    const b = this.stored.get(sha);
    return Promise.resolve(b ? ReadableStream.from([b]) : null);
  }
  stat(sha: string) {
    const b = this.stored.get(sha);
    return Promise.resolve(b ? { bytes: b.length, modified: null } : null);
  }
  delete(sha: string) {
    this.stored.delete(sha);
    return Promise.resolve();
  }
  async *list() {
    yield* this.stored.keys();
  }
}

/** Answers every name with 127.0.0.1, without DNS. */
const loopbackResolver: Resolver = { resolve: () => Promise.resolve(["127.0.0.1"]) };

function allow(...rules: string[]): AddressPolicy {
  return { allowPrivateNetworks: false, allow: parseHostRules(rules.join(",")), deny: [] };
}

function settings(overrides: Partial<FetchSettings> = {}): FetchSettings {
  return {
    maxImageBytes: 5 * MiB,
    maxImagePixels: 100_000_000,
    totalTimeoutMs: 5_000,
    connectTimeoutMs: 2_000,
    stallTimeoutMs: 2_000,
    maxRedirects: 5,
    userAgent: "ingest-test/1.0 (+tests)",
    policy: DEFAULT_POLICY,
    ...overrides,
  };
}

/** Runs `fn` with a fetcher allowed to reach `origin`, closing everything afterwards. */
async function withFetcher(
  origin: Origin,
  overrides: Partial<FetchSettings>,
  fn: (fetcher: Fetcher, blobs: MemoryBlobs) => Promise<void>,
): Promise<void> {
  const blobs = new MemoryBlobs();
  const fetcher = createFetcher(
    settings({ policy: allow(`127.0.0.1:${origin.port}`), ...overrides }),
    { blobs, resolver: loopbackResolver },
  );
  try {
    await fn(fetcher, blobs);
  } finally {
    fetcher.close();
    await origin.close();
  }
}

function assertFailure(
  result: AttemptResult,
  reason: string,
  transient: boolean,
): asserts result is Extract<AttemptResult, { ok: false }> {
  assert.equal(result.ok, false, `expected ${reason}, got success`);
  if (result.ok) return;
  assert.equal(result.reason, reason, `expected ${reason}, got ${result.reason}: ${result.detail}`);
  assert.equal(result.transient, transient, `transient for ${reason}`);
}

/** A route table for serveOrigin. */
function routes(table: Record<string, (req: Request) => Response | Promise<Response>>) {
  return (req: Request) => {
    const route = table[new URL(req.url).pathname];
    return route ? route(req) : new Response("nope", { status: 404 });
  };
}

const png = () => new Response(PNG, { headers: { "content-type": "image/png" } });

// --- refusals before any connection -----------------------------------------------------------

Deno.test("attempt() refuses every spelling of a loopback address without connecting", async (t) => {
  const origin = serveOrigin(png);
  const fetcher = createFetcher(settings(), { blobs: new MemoryBlobs() });
  const p = origin.port;
  const spellings = [
    "127.0.0.1",
    "127.0.0.1.",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0x7f.1",
    "127.1",
    "0",
    "0.0.0.0",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    // Deliberately NOT here: the IPv4-compatible, translated, NAT64, 6to4 and
    // Teredo forms of 127.0.0.1. They embed loopback but are routed as
    // ordinary IPv6 addresses, so if the guard had a bug the packet would
    // leave the machine. They are tested on the policy function instead
    // (net_address_policy_test.ts); every spelling here stays on loopback
    // even if everything else were broken.
    "localhost",
    "LOCALHOST.",
    "images.localhost",
  ];
  try {
    for (const host of spellings) {
      await t.step(`http://${host}:${p}/`, async () => {
        const result = await fetcher.attempt(`http://${host}:${p}/img.png`);
        assertFailure(result, "blocked_address", false);
      });
    }
    assert.equal(origin.connections, 0, "a refused URL must not open a connection");
  } finally {
    fetcher.close();
    await origin.close();
  }
});

Deno.test("attempt() allowing 127.0.0.1:<port> does not open IPv6 spellings of it", async () => {
  const origin = serveOrigin(png);
  await withFetcher(origin, {}, async (fetcher) => {
    // Only spellings that stay on loopback on the wire (see the test above).
    for (const host of ["[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]"]) {
      const result = await fetcher.attempt(`http://${host}:${origin.port}/img.png`);
      assertFailure(result, "blocked_address", false);
    }
    assert.equal(origin.connections, 0);
    // The allowed spelling itself works, so the refusals above were the policy.
    assert.equal((await fetcher.attempt(origin.url("/img.png"))).ok, true);
  });
});

Deno.test("attempt() refuses a redirect from an allowed origin to a refused loopback port", async () => {
  const refused = serveOrigin(png);
  const origin = serveOrigin(() =>
    new Response(null, { status: 302, headers: { location: refused.url("/img.png") } })
  );
  try {
    await withFetcher(origin, {}, async (fetcher) => {
      const result = await fetcher.attempt(origin.url("/go"));
      assertFailure(result, "blocked_address", false);
      assert.match(result.detail, /redirect 1/);
      assert.equal(origin.connections, 1);
      assert.equal(refused.connections, 0, "the refused port must never be connected to");
    });
  } finally {
    await refused.close();
  }
});

Deno.test("attempt() refuses a URL with credentials as invalid_url without connecting", async () => {
  const origin = serveOrigin(png);
  await withFetcher(origin, {}, async (fetcher) => {
    const result = await fetcher.attempt(`http://user:secret@127.0.0.1:${origin.port}/img.png`);
    assertFailure(result, "invalid_url", false);
    assert.equal(origin.connections, 0);
  });
});

Deno.test("attempt() refuses a redirect to a URL with credentials", async () => {
  const origin = serveOrigin(routes({
    "/go": () =>
      new Response(null, {
        status: 301,
        headers: { location: `http://a:b@127.0.0.1:${origin.port}/img.png` },
      }),
    "/img.png": png,
  }));
  await withFetcher(origin, {}, async (fetcher) => {
    assertFailure(await fetcher.attempt(origin.url("/go")), "invalid_url", false);
    assert.deepEqual(origin.requests.map((r) => r.path), ["/go"]);
  });
});

Deno.test("attempt() refuses non-http schemes and unparsable URLs", async () => {
  const fetcher = createFetcher(settings(), { blobs: new MemoryBlobs() });
  try {
    for (const url of ["ftp://127.0.0.1/x.png", "file:///etc/passwd", "not a url", "http://"]) {
      assertFailure(await fetcher.attempt(url), "invalid_url", false);
    }
  } finally {
    fetcher.close();
  }
});

// --- misbehaving origins ----------------------------------------------------------------------

Deno.test("attempt() times out on an origin that drips one byte at a time", async () => {
  const origin = serveRaw(async (conn, signal) => {
    await writeAll(
      conn,
      "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 100000\r\n\r\n",
    );
    for (let i = 0; !signal.aborted; i++) {
      await writeAll(conn, PNG.subarray(i, i + 1));
      await sleep(250, signal);
    }
  });
  await withFetcher(origin, { stallTimeoutMs: 1_000, totalTimeoutMs: 1_500 }, async (f, blobs) => {
    const started = Date.now();
    const result = await f.attempt(origin.url("/drip.png"));
    assertFailure(result, "timeout", true);
    assert.match(result.detail, /longer than 1500 ms/);
    assert.ok(Date.now() - started < 3_000, "the total timeout bounds the attempt");
    assert.equal(blobs.outstanding, 0);
  });
});

Deno.test("attempt() times out when the body stalls after the headers", async () => {
  const origin = serveRaw(async (conn, signal) => {
    await writeAll(conn, "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n");
    await writeAll(conn, PNG.subarray(0, 40));
    await sleep(10_000, signal);
  });
  await withFetcher(origin, { stallTimeoutMs: 300 }, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/stall.png"));
    assertFailure(result, "timeout", true);
    assert.match(result.detail, /no body byte/);
  });
});

Deno.test("attempt() times out when the origin never sends headers", async () => {
  const origin = serveRaw((_conn, signal) => sleep(10_000, signal));
  await withFetcher(origin, { connectTimeoutMs: 300 }, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/silent.png"));
    assertFailure(result, "timeout", true);
    assert.match(result.detail, /no response headers/);
  });
});

Deno.test("attempt() reports truncated when the body is shorter than Content-Length", async () => {
  const origin = serveRaw(async (conn) => {
    await writeAll(conn, `HTTP/1.1 200 OK\r\ncontent-length: ${PNG.length + 5000}\r\n\r\n`);
    await writeAll(conn, PNG);
  });
  await withFetcher(origin, {}, async (fetcher, blobs) => {
    const result = await fetcher.attempt(origin.url("/short.png"));
    assertFailure(result, "truncated", true);
    assert.equal(blobs.outstanding, 0);
  });
});

Deno.test("attempt() reports truncated when the connection is reset mid-body", async () => {
  // Closing a socket with unread input makes the kernel send RST, not FIN:
  // so the request is left unread on purpose.
  const origin = serveRaw(async (conn) => {
    await sleep(50);
    await writeAll(conn, `HTTP/1.1 200 OK\r\ncontent-length: ${PNG.length * 10}\r\n\r\n`);
    await writeAll(conn, PNG);
    await sleep(200);
  }, { readRequest: false });
  await withFetcher(origin, {}, async (fetcher) => {
    assertFailure(await fetcher.attempt(origin.url("/reset.png")), "truncated", true);
  });
});

Deno.test("attempt() reports unreachable when nothing listens on the port", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const fetcher = createFetcher(settings({ policy: allow(`127.0.0.1:${port}`) }), {
    blobs: new MemoryBlobs(),
  });
  try {
    assertFailure(
      await fetcher.attempt(`http://127.0.0.1:${port}/x.png`),
      "unreachable",
      true,
    );
  } finally {
    fetcher.close();
  }
});

// --- HTTP statuses and redirects --------------------------------------------------------------

Deno.test("attempt() reports http_500 as transient", async () => {
  const origin = serveOrigin(() => new Response("oops", { status: 500 }));
  await withFetcher(origin, {}, async (fetcher) => {
    assertFailure(await fetcher.attempt(origin.url("/x.png")), "http_500", true);
  });
});

Deno.test("attempt() reports 429 as transient and keeps Retry-After", async () => {
  const origin = serveOrigin(() =>
    new Response("slow down", { status: 429, headers: { "retry-after": "1" } })
  );
  await withFetcher(origin, {}, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/x.png"));
    assertFailure(result, "http_429", true);
    assert.equal(result.retryAfterMs, 1000);
  });
});

Deno.test("attempt() reports http_404 as permanent", async () => {
  const origin = serveOrigin(() => new Response("gone", { status: 404 }));
  await withFetcher(origin, {}, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/x.png"));
    assertFailure(result, "http_404", false);
    assert.equal(result.retryAfterMs, undefined);
  });
});

Deno.test("attempt() stops a redirect loop with too_many_redirects", async () => {
  const origin = serveOrigin(routes({
    "/a": () => new Response(null, { status: 302, headers: { location: "/b" } }),
    "/b": () => new Response(null, { status: 307, headers: { location: "a" } }),
  }));
  await withFetcher(origin, {}, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/a"));
    assertFailure(result, "too_many_redirects", false);
    assert.match(result.detail, /loop/);
    assert.deepEqual(origin.requests.map((r) => r.path), ["/a", "/b"]);
  });
});

/** `/r/<n>` redirects to `/r/<n-1>`; `/r/0` is the image. Relative Locations on purpose. */
function chainOrigin(): Origin {
  return serveOrigin((req) => {
    const n = Number(new URL(req.url).pathname.split("/")[2]);
    return n === 0 ? png() : new Response(null, {
      status: [301, 302, 303, 307, 308][n % 5],
      headers: { location: `${n - 1}` },
    });
  });
}

Deno.test("attempt() follows a chain of 5 redirects", async () => {
  const origin = chainOrigin();
  await withFetcher(origin, {}, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/r/5"));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.finalUrl, origin.url("/r/0"));
    assert.equal(origin.requests.length, 6);
  });
});

Deno.test("attempt() refuses a chain of 6 redirects", async () => {
  const origin = chainOrigin();
  await withFetcher(origin, {}, async (fetcher) => {
    assertFailure(await fetcher.attempt(origin.url("/r/6")), "too_many_redirects", false);
    assert.equal(origin.requests.length, 6, "the 7th request is never made");
  });
});

// --- content checks ---------------------------------------------------------------------------

Deno.test("attempt() refuses HTML served as image/png as not_an_image", async () => {
  const origin = serveOrigin(() =>
    new Response(new Uint8Array(htmlBytes()), { headers: { "content-type": "image/png" } })
  );
  await withFetcher(origin, {}, async (fetcher, blobs) => {
    assertFailure(await fetcher.attempt(origin.url("/x.png")), "not_an_image", false);
    assert.equal(blobs.outstanding, 0);
  });
});

Deno.test("attempt() refuses an empty body as not_an_image", async () => {
  const origin = serveOrigin(() =>
    new Response(new Uint8Array(0), { headers: { "content-type": "image/png" } })
  );
  await withFetcher(origin, {}, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/x.png"));
    assertFailure(result, "not_an_image", false);
    assert.match(result.detail, /empty/);
  });
});

Deno.test("attempt() refuses SVG as unsupported_format", async () => {
  const origin = serveOrigin(() =>
    new Response(new Uint8Array(svgBytes()), { headers: { "content-type": "image/svg+xml" } })
  );
  await withFetcher(origin, {}, async (fetcher) => {
    assertFailure(await fetcher.attempt(origin.url("/x.svg")), "unsupported_format", false);
  });
});

Deno.test("attempt() stores the decoded bytes of a gzip-encoded image", async () => {
  const gz = gzipSync(PNG);
  const origin = serveOrigin(() =>
    new Response(gz, { headers: { "content-type": "image/png", "content-encoding": "gzip" } })
  );
  await withFetcher(origin, {}, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/x.png"));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.staged.sha256, sha256(PNG));
    assert.equal(result.staged.bytes, PNG.length);
    await result.staged.discard();
  });
});

Deno.test("attempt() stops a gzip bomb at maxImageBytes of decoded bytes", async () => {
  const inflated = new Uint8Array(64 * MiB);
  inflated.set(pngWithDimensions(10, 10)); // a valid header so only the size can stop it
  const bomb = gzipSync(inflated, { level: 9 });
  assert.ok(bomb.length < MiB / 4, `bomb is ${bomb.length} bytes`);
  const origin = serveOrigin(() =>
    new Response(bomb, { headers: { "content-type": "image/png", "content-encoding": "gzip" } })
  );
  await withFetcher(origin, { maxImageBytes: MiB }, async (fetcher, blobs) => {
    const result = await fetcher.attempt(origin.url("/bomb.png"));
    assertFailure(result, "too_large", false);
    assert.match(result.detail, /decoded/);
    assert.equal(blobs.outstanding, 0);
  });
});

Deno.test("attempt() refuses too_many_pixels from the header without reading the whole body", async () => {
  const total = 64 * MiB;
  let sent = 0;
  const origin = serveOrigin(() => {
    const header = pngWithDimensions(20_000, 20_000);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = sent === 0 ? header : new Uint8Array(64 * 1024);
        sent += chunk.length;
        controller.enqueue(chunk);
        if (sent >= total) controller.close();
      },
    });
    return new Response(body, { headers: { "content-type": "image/png" } });
  });
  await withFetcher(
    origin,
    { maxImagePixels: 100_000_000, maxImageBytes: 1024 * MiB },
    async (fetcher) => {
      const result = await fetcher.attempt(origin.url("/huge.png"));
      assertFailure(result, "too_many_pixels", false);
      assert.match(result.detail, /20000x20000/);
      await sleep(100);
      assert.ok(sent < total / 4, `origin produced ${sent} of ${total} bytes`);
    },
  );
});

Deno.test("attempt() refuses a declared Content-Length over maxImageBytes before reading", async () => {
  const big = new Uint8Array(2 * MiB);
  big.set(PNG);
  const origin = serveOrigin(() => new Response(big, { headers: { "content-type": "image/png" } }));
  await withFetcher(origin, { maxImageBytes: MiB }, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/big.png"));
    assertFailure(result, "too_large", false);
    assert.match(result.detail, /Content-Length/);
  });
});

Deno.test("attempt() refuses a streamed body as soon as it passes maxImageBytes", async () => {
  let sent = 0;
  const origin = serveOrigin(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          const chunk = sent === 0 ? PNG : new Uint8Array(64 * 1024);
          sent += chunk.length;
          controller.enqueue(chunk);
          if (sent > 64 * MiB) controller.close();
        },
      }),
      { headers: { "content-type": "image/png" } }, // chunked: no Content-Length
    )
  );
  await withFetcher(origin, { maxImageBytes: MiB }, async (fetcher) => {
    const result = await fetcher.attempt(origin.url("/endless.png"));
    assertFailure(result, "too_large", false);
    assert.doesNotMatch(result.detail, /Content-Length/);
    await sleep(100);
    assert.ok(sent < 16 * MiB, `origin produced ${sent} bytes`);
  });
});

// --- success ----------------------------------------------------------------------------------

Deno.test("attempt() stores a PNG with the right hash and size, and commit makes it readable", async () => {
  const dir = await Deno.makeTempDir();
  const blobs = new DiskBlobStore(dir);
  const origin = serveOrigin(png);
  const fetcher = createFetcher(settings({ policy: allow(`127.0.0.1:${origin.port}`) }), {
    blobs,
    resolver: loopbackResolver,
  });
  try {
    const result = await fetcher.attempt(origin.url("/img.png"));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.staged.sha256, sha256(PNG));
    assert.equal(result.staged.bytes, PNG.length);
    assert.deepEqual(result.info, {
      format: "png",
      contentType: "image/png",
      width: 64,
      height: 48,
    });
    assert.equal(result.finalUrl, origin.url("/img.png"));
    await result.staged.commit();
    const stream = await blobs.get(result.staged.sha256);
    assert.ok(stream);
    assert.deepEqual(new Uint8Array(await new Response(stream).arrayBuffer()), PNG);
  } finally {
    fetcher.close();
    blobs.close();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("attempt() stores bodies around and past the client's read segment intact on disk", async () => {
  const dir = await Deno.makeTempDir();
  const blobs = new DiskBlobStore(dir);
  // A PNG header followed by filler: the sniffer reads the header, the store keeps every byte.
  const sizes = [256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 1_300_000];
  const bodies = sizes.map((n) => {
    const body = new Uint8Array(n);
    for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(body.subarray(i, i + 65_536));
    body.set(PNG);
    return body;
  });
  const origin = serveOrigin((req) =>
    new Response(bodies[Number(new URL(req.url).pathname.slice(1))])
  );
  const fetcher = createFetcher(settings({ policy: allow(`127.0.0.1:${origin.port}`) }), {
    blobs,
    resolver: loopbackResolver,
  });
  try {
    for (const [i, body] of bodies.entries()) {
      const result = await fetcher.attempt(origin.url(`/${i}`));
      assert.ok(result.ok, `${body.length} bytes: ${JSON.stringify(result)}`);
      assert.equal(result.staged.bytes, body.length);
      assert.equal(result.staged.sha256, sha256(body));
      await result.staged.commit();
      const stream = await blobs.get(result.staged.sha256);
      assert.deepEqual(new Uint8Array(await new Response(stream).arrayBuffer()), body);
    }
  } finally {
    fetcher.close();
    blobs.close();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("attempt() sends the configured User-Agent and Accept-Encoding: identity", async () => {
  const origin = serveOrigin(png);
  await withFetcher(origin, { userAgent: "probe-agent/9" }, async (fetcher) => {
    assert.ok((await fetcher.attempt(origin.url("/img.png"))).ok);
    const seen = origin.requests[0].headers;
    assert.equal(seen.get("user-agent"), "probe-agent/9");
    assert.equal(seen.get("accept-encoding"), "identity");
  });
});

Deno.test("attempt() keeps the Host header of http://localhost:<port> while pinned to 127.0.0.1", async () => {
  const origin = serveOrigin(png);
  const fetcher = createFetcher(
    settings({ policy: allow(`localhost:${origin.port}`) }),
    { blobs: new MemoryBlobs() }, // the real resolver: localhost is answered without DNS
  );
  try {
    const result = await fetcher.attempt(`http://localhost:${origin.port}/img.png`);
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(origin.requests[0].headers.get("host"), `localhost:${origin.port}`);
  } finally {
    fetcher.close();
    await origin.close();
  }
});

Deno.test("attempt() connects a name that exists nowhere to the address its resolver vetted", async () => {
  const origin = serveOrigin(png);
  await withFetcher(origin, {}, async (fetcher) => {
    const result = await fetcher.attempt(`http://images.test:${origin.port}/img.png`);
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(origin.requests[0].headers.get("host"), `images.test:${origin.port}`);
    assert.equal(origin.connections, 1);
  });
});

Deno.test("attempt() reuses the pinned connection for a second download from the same origin", async () => {
  const origin = serveOrigin(png);
  await withFetcher(origin, {}, async (fetcher) => {
    for (let i = 0; i < 3; i++) assert.ok((await fetcher.attempt(origin.url(`/${i}.png`))).ok);
    assert.equal(origin.connections, 1);
  });
});

Deno.test("attempt() pins HTTPS through the tunnel and checks the certificate against the URL's name", async () => {
  const origin = serveOrigin(png, { tls: true });
  const connector = new PinnedConnector({ caCerts: [TEST_TLS.ca] });
  const fetcher = createFetcher(settings({ policy: allow(`127.0.0.1:${origin.port}`) }), {
    blobs: new MemoryBlobs(),
    resolver: loopbackResolver,
    connector,
  });
  try {
    const ok = await fetcher.attempt(`https://${TEST_TLS.name}:${origin.port}/img.png`);
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.equal(ok.staged.sha256, sha256(PNG));
    // Over HTTP/2 the authority is not a Host header; Deno.serve puts it in the URL.
    assert.equal(new URL(origin.requests[0].url).host, `${TEST_TLS.name}:${origin.port}`);
    assert.equal(new URL(ok.finalUrl).hostname, TEST_TLS.name);
    // Same address, different name: the certificate does not match, so it fails.
    const wrongName = await fetcher.attempt(`https://other.test:${origin.port}/img.png`);
    assertFailure(wrongName, "unreachable", true);
    assert.match(wrongName.detail, /certificate/i);
  } finally {
    fetcher.close();
    connector.close();
    await origin.close();
  }
});

Deno.test("attempt() aborted by the caller fails transiently and leaves nothing staged", async () => {
  const origin = serveRaw(async (conn, signal) => {
    await writeAll(conn, "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n");
    await writeAll(conn, PNG.subarray(0, 100));
    await sleep(10_000, signal);
  });
  await withFetcher(origin, {}, async (fetcher, blobs) => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 200);
    const started = Date.now();
    const result = await fetcher.attempt(origin.url("/x.png"), abort.signal);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.transient);
    assert.ok(Date.now() - started < 1_500);
    assert.equal(blobs.outstanding, 0);
  });
});

Deno.test("hostKey() is the lowercased host with a non-default port", () => {
  assert.equal(hostKey("http://Images.Example.COM/a.png"), "images.example.com");
  assert.equal(hostKey("https://example.com:8443/a.png"), "example.com:8443");
  assert.equal(hostKey("https://example.com:443/a.png"), "example.com");
  assert.equal(hostKey("http://[::1]:8080/"), "[::1]:8080");
  assert.equal(hostKey("not a URL"), "not a url");
});

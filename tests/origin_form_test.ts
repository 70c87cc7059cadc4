/**
 * What the fetcher puts on the wire, seen by an origin with no HTTP library
 * in between: origin-form request lines (RFC 9112 section 3.2.1) and the
 * URL's Host, on the first hop and after redirects, while the socket goes
 * to the vetted loopback address. Loopback only.
 */
import assert from "node:assert/strict";
import type { BlobStore, StagedBlob } from "../services/blobs/blob_store.ts";
import { createFetcher, type FetchSettings } from "../services/fetch/fetcher.ts";
import { DEFAULT_POLICY } from "../services/net/address_policy.ts";
import { parseHostRules } from "../services/net/host_rules.ts";
import type { Resolver } from "../services/net/resolver.ts";
import { makeImage } from "./support/images.ts";
import { ok, type RecordingOrigin, serveRecording } from "./support/recording_origin.ts";

const PNG = new Uint8Array(await makeImage("png", { width: 20, height: 10 }));

/** Counts bytes and forgets them. */
const countingBlobs: BlobStore = {
  async stage(body: AsyncIterable<Uint8Array>): Promise<StagedBlob> {
    let bytes = 0;
    for await (const chunk of body) bytes += chunk.length;
    const settle = () => Promise.resolve();
    return { sha256: "0".repeat(64), bytes, commit: settle, discard: settle };
  },
  get: () => Promise.resolve(null),
  stat: () => Promise.resolve(null),
  delete: () => Promise.resolve(),
  async *list() {},
};

/** Every name is 127.0.0.1, without DNS. */
const loopback: Resolver = { resolve: () => Promise.resolve(["127.0.0.1"]) };

function fetcherFor(...origins: RecordingOrigin[]) {
  const settings: FetchSettings = {
    maxImageBytes: 1024 * 1024,
    maxImagePixels: 1_000_000,
    totalTimeoutMs: 5_000,
    connectTimeoutMs: 2_000,
    stallTimeoutMs: 2_000,
    maxRedirects: 5,
    userAgent: "origin-form-test",
    policy: {
      ...DEFAULT_POLICY,
      allow: parseHostRules(origins.map((o) => `127.0.0.1:${o.port}`).join(",")),
    },
  };
  return createFetcher(settings, { blobs: countingBlobs, resolver: loopback });
}

function redirect(location: string): string {
  return `HTTP/1.1 302 Found\r\nlocation: ${location}\r\ncontent-length: 0\r\n\r\n`;
}

Deno.test("a direct fetch sends an origin-form request line and the URL's Host", async () => {
  const origin = serveRecording(() => ({ bytes: ok(PNG) }));
  const fetcher = fetcherFor(origin);
  try {
    const byAddress = await fetcher.attempt(origin.url("/images/a.png?size=2&x=%20y#frag"));
    assert.ok(byAddress.ok, JSON.stringify(byAddress));
    // Fetched by a name the resolver pins to 127.0.0.1: Host carries the name.
    for (const path of ["/b.png", "/c.png"]) {
      const byName = await fetcher.attempt(`http://Images.Test:${origin.port}${path}`);
      assert.ok(byName.ok, JSON.stringify(byName));
    }
    assert.deepEqual(origin.seen.map((r) => r.line), [
      "GET /images/a.png?size=2&x=%20y HTTP/1.1",
      "GET /b.png HTTP/1.1",
      "GET /c.png HTTP/1.1",
    ]);
    assert.deepEqual(origin.seen.map((r) => r.hosts), [
      [`127.0.0.1:${origin.port}`],
      [`images.test:${origin.port}`],
      [`images.test:${origin.port}`],
    ]);
    assert.match(origin.seen[0].head, /^user-agent: origin-form-test$/m);
    assert.match(origin.seen[0].head, /^accept-encoding: identity$/m);
    assert.doesNotMatch(origin.seen[0].head, /proxy-/i);
    // One kept-alive connection per host name (as browsers pool), reused.
    assert.deepEqual(origin.seen.map((r) => r.connection), [1, 2, 2]);
  } finally {
    fetcher.close();
    await origin.close();
  }
});

Deno.test("a redirect to another path is followed with an origin-form request", async () => {
  const origin = serveRecording((req) =>
    req.line.startsWith("GET /old ")
      ? { bytes: redirect("/new/place.png?v=1") }
      : { bytes: ok(PNG) }
  );
  const fetcher = fetcherFor(origin);
  try {
    const result = await fetcher.attempt(origin.url("/old"));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.finalUrl, origin.url("/new/place.png?v=1"));
    assert.deepEqual(origin.seen.map((r) => r.line), [
      "GET /old HTTP/1.1",
      "GET /new/place.png?v=1 HTTP/1.1",
    ]);
    for (const r of origin.seen) assert.deepEqual(r.hosts, [`127.0.0.1:${origin.port}`]);
  } finally {
    fetcher.close();
    await origin.close();
  }
});

Deno.test("a redirect to another allowed loopback port gets that port's Host, in origin-form", async () => {
  const second = serveRecording(() => ({ bytes: ok(PNG) }));
  const first = serveRecording(() => ({
    bytes: redirect(`http://localhost.test:${second.port}/moved.png`),
  }));
  const fetcher = fetcherFor(first, second);
  try {
    const result = await fetcher.attempt(first.url("/start.png"));
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(first.seen.map((r) => [r.line, r.hosts]), [
      ["GET /start.png HTTP/1.1", [`127.0.0.1:${first.port}`]],
    ]);
    assert.deepEqual(second.seen.map((r) => [r.line, r.hosts]), [
      ["GET /moved.png HTTP/1.1", [`localhost.test:${second.port}`]],
    ]);
  } finally {
    fetcher.close();
    await Promise.all([first.close(), second.close()]);
  }
});

/**
 * Refresh with conditional requests, end to end: the real service on an
 * in-memory KV, a real HTTP origin on 127.0.0.1 that records the
 * validators each request carried.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fsck, isClean } from "../services/fsck.ts";
import { startTestService, type TestService } from "./support/app.ts";
import { allItems, submit, waitForJob } from "./support/http.ts";
import { waitFor } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import { type Origin, serveOrigin } from "./support/origin.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const body = (b: Uint8Array) => b as Uint8Array<ArrayBuffer>;

/** The validators one request to the origin carried. */
interface Sent {
  path: string;
  ifNoneMatch: string | null;
  ifModifiedSince: string | null;
}

interface Setup {
  t: TestService;
  origin: Origin;
  /** The origin's answers; replace it between jobs. */
  handle: (req: Request) => Response | Promise<Response>;
  /** What each request carried, in order. */
  sent(): Sent[];
  [Symbol.asyncDispose](): Promise<void>;
}

async function setup(env: Record<string, string> = {}): Promise<Setup> {
  const s = {
    handle: (_: Request) => new Response("not yet", { status: 404 }),
  } as unknown as Setup;
  const origin = serveOrigin((req) => s.handle(req));
  const t = await startTestService({ FETCH_ALLOW_HOSTS: `127.0.0.1:${origin.port}`, ...env });
  return Object.assign(s, {
    t,
    origin,
    sent: () =>
      origin.requests.map((r) => ({
        path: r.path,
        ifNoneMatch: r.headers.get("if-none-match"),
        ifModifiedSince: r.headers.get("if-modified-since"),
      })),
    async [Symbol.asyncDispose]() {
      await t.close();
      await origin.close();
    },
  });
}

async function metadata(t: TestService, url: string) {
  const res = await t.app.request(`/images/metadata?url=${encodeURIComponent(url)}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  return await res.json();
}

async function content(t: TestService, url: string): Promise<Uint8Array> {
  const res = await t.app.request(`/images/content?url=${encodeURIComponent(url)}`);
  assert.equal(res.status, 200);
  return new Uint8Array(await res.arrayBuffer());
}

async function storedBlobs(t: TestService): Promise<string[]> {
  const hashes: string[] = [];
  for await (const h of t.service.blobs.list()) hashes.push(h);
  return hashes.sort();
}

/** Submits `urls` (as JSON, or as text with `?refresh=true`), waits, returns the items. */
async function run(t: TestService, urls: string[], refresh: boolean | "text") {
  let id: string;
  if (refresh === "text") {
    const res = await t.app.request("/images?refresh=true", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: urls.join("\n"),
    });
    assert.equal(res.status, 202);
    id = (await res.json()).id;
  } else {
    id = (await submit(t.app, { urls, refresh })).id;
  }
  await waitForJob(t.app, id);
  return await allItems(t.app, id);
}

/** Lets the clock move on, so a later timestamp is a different one. */
const tick = () => new Promise((r) => setTimeout(r, 5));

Deno.test("a refresh sends the stored validators; a 304 keeps the image and updates checkedAt and the cache headers", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 6, height: 4, seed: 21 });
  // A weak ETag with characters that mean something elsewhere in HTTP, kept
  // and sent back as it came.
  const etag = 'W/"v1;q=0.5, a/b+c==\\"';
  const lastModified = "Tue, 17 Nov 2026 08:12:31 GMT";
  s.handle = (req) => {
    if (req.headers.get("if-none-match") === etag) {
      return new Response(null, {
        status: 304,
        headers: { etag, "cache-control": "max-age=120", expires: "Thu, 19 Nov 2026 00:00:00 GMT" },
      });
    }
    return new Response(body(png), {
      headers: { etag, "last-modified": lastModified, "cache-control": "max-age=60" },
    });
  };
  const url = s.origin.url("/kept.png");

  const [first] = await run(s.t, [url], false);
  assert.equal(first.state, "complete");
  const before = await metadata(s.t, url);
  assert.equal(before.etag, etag);
  assert.equal(before.lastModified, lastModified);
  assert.equal(before.cacheControl, "max-age=60");
  assert.equal(before.expires, null);
  assert.equal(before.checkedAt, before.storedAt);

  await tick();
  const [item] = await run(s.t, [url], "text");
  assert.deepEqual(item, {
    index: 0,
    url,
    state: "complete",
    attempts: 1,
    revalidated: true,
  });
  assert.deepEqual(s.sent(), [
    { path: "/kept.png", ifNoneMatch: null, ifModifiedSince: null },
    { path: "/kept.png", ifNoneMatch: etag, ifModifiedSince: lastModified },
  ]);
  const after = await metadata(s.t, url);
  assert.equal(after.sha256, sha256(png));
  assert.equal(after.storedAt, before.storedAt, "no download happened");
  assert.ok(after.checkedAt > before.checkedAt, `${after.checkedAt} > ${before.checkedAt}`);
  // RFC 9111 4.3.4: what the 304 carried replaces, what it did not stays.
  assert.equal(after.cacheControl, "max-age=120");
  assert.equal(after.expires, "Thu, 19 Nov 2026 00:00:00 GMT");
  assert.equal(after.lastModified, lastModified);
  assert.equal(after.etag, etag);
  assert.deepEqual(await content(s.t, url), png);
  assert.deepEqual(await storedBlobs(s.t), [sha256(png)]);
});

Deno.test("an origin that ignores the validators and sends the same bytes: complete, no new blob", async () => {
  await using s = await setup();
  const gif = await makeImage("gif", { width: 5, height: 5, seed: 22 });
  s.handle = () => new Response(body(gif), { headers: { etag: '"same"' } });
  const url = s.origin.url("/same.gif");
  await run(s.t, [url], false);
  const before = await metadata(s.t, url);

  await tick();
  const [item] = await run(s.t, [url], true);
  assert.deepEqual(item, { index: 0, url, state: "complete", attempts: 1 });
  assert.equal(s.sent()[1].ifNoneMatch, '"same"');
  const after = await metadata(s.t, url);
  assert.equal(after.sha256, sha256(gif));
  assert.equal(after.bytes, gif.byteLength);
  assert.ok(after.storedAt > before.storedAt, "the bytes were downloaded again");
  assert.equal(after.checkedAt, after.storedAt);
  assert.deepEqual(await storedBlobs(s.t), [sha256(gif)], "identical bytes are one blob");
  assert.deepEqual(await content(s.t, url), gif);
});

Deno.test("changed bytes on a refresh: a new blob, new sha256, new storedAt and the new validators only", async () => {
  await using s = await setup();
  const v1 = await makeImage("png", { width: 4, height: 4, seed: 23 });
  const v2 = await makeImage("png", { width: 8, height: 2, seed: 24 });
  s.handle = () =>
    new Response(body(v1), {
      headers: { etag: '"v1"', "last-modified": "Mon, 16 Nov 2026 10:00:00 GMT" },
    });
  const url = s.origin.url("/changing.png");
  await run(s.t, [url], false);
  const before = await metadata(s.t, url);

  // The origin has moved on: v1's ETag no longer matches.
  s.handle = (req) =>
    req.headers.get("if-none-match") === '"v2"'
      ? new Response(null, { status: 304 })
      : new Response(body(v2), { headers: { etag: '"v2"', expires: "0" } });
  await tick();
  const [item] = await run(s.t, [url], true);
  assert.deepEqual(item, { index: 0, url, state: "complete", attempts: 1 });
  assert.equal(s.sent()[1].ifNoneMatch, '"v1"');
  assert.equal(s.sent()[1].ifModifiedSince, "Mon, 16 Nov 2026 10:00:00 GMT");
  const after = await metadata(s.t, url);
  assert.equal(after.sha256, sha256(v2));
  assert.notEqual(after.sha256, before.sha256);
  assert.equal(after.width, 8);
  assert.ok(after.storedAt > before.storedAt);
  assert.equal(after.etag, '"v2"');
  assert.equal(after.lastModified, null, "v1's Last-Modified is not v2's");
  assert.equal(after.expires, "0");
  assert.deepEqual(await content(s.t, url), v2);
  // v1's bytes are no longer referenced: collected right after the commit.
  await waitFor(async () => (await storedBlobs(s.t)).length === 1, "v1's bytes collected");
  assert.deepEqual(await storedBlobs(s.t), [sha256(v2)]);
  assert.equal(await s.t.service.refs.count(sha256(v1)), 0);
  assert.equal(await s.t.service.refs.count(sha256(v2)), 1);
  const report = await fsck(s.t.service, { repair: false, minOrphanAgeMs: 0 });
  assert.ok(isClean(report), JSON.stringify(report));
});

Deno.test("a 304 to a request that carried no validators fails as http_304 and leaves the image as it was", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 3, height: 3, seed: 25 });
  s.handle = () => new Response(body(png)); // no validators at all
  const url = s.origin.url("/bare.png");
  await run(s.t, [url], false);
  const before = await metadata(s.t, url);
  assert.equal(before.etag, null);
  assert.equal(before.lastModified, null);

  s.handle = () => new Response(null, { status: 304 });
  const [item] = await run(s.t, [url], true);
  assert.equal(item.state, "failed");
  assert.equal(item.reason, "http_304");
  assert.equal(item.attempts, 1, "not retried");
  assert.match((item as { detail?: string }).detail ?? "", /carried no validators/);
  assert.deepEqual(s.sent()[1], { path: "/bare.png", ifNoneMatch: null, ifModifiedSince: null });
  assert.deepEqual(await metadata(s.t, url), before);
  assert.deepEqual(await content(s.t, url), png);
});

Deno.test("a 304 whose ETag is not the one sent is not trusted: the image is downloaded again at once", async () => {
  await using s = await setup();
  const v1 = await makeImage("webp", { width: 4, height: 4, seed: 26 });
  const v2 = await makeImage("webp", { width: 6, height: 6, seed: 27 });
  s.handle = () => new Response(body(v1), { headers: { etag: '"a"' } });
  const url = s.origin.url("/odd.webp");
  await run(s.t, [url], false);

  s.handle = (req) =>
    req.headers.has("if-none-match")
      ? new Response(null, { status: 304, headers: { etag: '"b"' } })
      : new Response(body(v2), { headers: { etag: '"b"' } });
  const [item] = await run(s.t, [url], true);
  assert.deepEqual(item, { index: 0, url, state: "complete", attempts: 1 });
  assert.deepEqual(s.sent().map((r) => r.ifNoneMatch), [null, '"a"', null]);
  const after = await metadata(s.t, url);
  assert.equal(after.sha256, sha256(v2));
  assert.equal(after.etag, '"b"');
});

Deno.test("validators go only to the URL that gave them: a redirect that moved gets a plain request", async () => {
  await using s = await setup();
  const a = await makeImage("png", { width: 2, height: 5, seed: 28 });
  const b = await makeImage("png", { width: 5, height: 2, seed: 29 });
  let target = "/a.png";
  s.handle = (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/latest") return Response.redirect(s.origin.url(target), 302);
    if (req.headers.has("if-none-match")) return new Response(null, { status: 304 });
    return new Response(body(path === "/a.png" ? a : b), { headers: { etag: `"${path}"` } });
  };
  const url = s.origin.url("/latest");
  await run(s.t, [url], false);
  assert.equal((await metadata(s.t, url)).etag, '"/a.png"');

  const [same] = await run(s.t, [url], true);
  assert.equal(same.state, "complete");
  assert.equal((same as { revalidated?: boolean }).revalidated, true);

  target = "/b.png";
  const [moved] = await run(s.t, [url], true);
  assert.deepEqual(moved, { index: 0, url, state: "complete", attempts: 1 });
  assert.deepEqual(s.sent(), [
    { path: "/latest", ifNoneMatch: null, ifModifiedSince: null },
    { path: "/a.png", ifNoneMatch: null, ifModifiedSince: null },
    { path: "/latest", ifNoneMatch: null, ifModifiedSince: null },
    { path: "/a.png", ifNoneMatch: '"/a.png"', ifModifiedSince: null },
    { path: "/latest", ifNoneMatch: null, ifModifiedSince: null },
    { path: "/b.png", ifNoneMatch: null, ifModifiedSince: null },
  ]);
  assert.equal((await metadata(s.t, url)).sha256, sha256(b));
});

Deno.test("a stored image whose blob is gone is refreshed with a plain download, never confirmed by a 304", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 7, height: 7, seed: 30 });
  s.handle = (req) =>
    req.headers.has("if-none-match")
      ? new Response(null, { status: 304, headers: { etag: '"p"' } })
      : new Response(body(png), { headers: { etag: '"p"' } });
  const url = s.origin.url("/lost.png");
  await run(s.t, [url], false);
  await s.t.service.blobs.delete(sha256(png));

  const [item] = await run(s.t, [url], true);
  assert.deepEqual(item, { index: 0, url, state: "complete", attempts: 1 });
  assert.equal(s.sent()[1].ifNoneMatch, null);
  assert.deepEqual(await content(s.t, url), png);
});

Deno.test("two refresh jobs naming the same URL revalidate it with one request", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 4, height: 6, seed: 31 });
  const etag = '"one"';
  let release!: () => void;
  const bothSubmitted = new Promise<void>((resolve) => release = resolve);
  s.handle = async (req) => {
    if (!req.headers.has("if-none-match")) return new Response(body(png), { headers: { etag } });
    await bothSubmitted;
    return new Response(null, { status: 304, headers: { etag } });
  };
  const url = s.origin.url("/shared.png");
  await run(s.t, [url], false);

  const jobs = await Promise.all([
    submit(s.t.app, { urls: [url], refresh: true }),
    submit(s.t.app, { urls: [url], refresh: true }),
  ]);
  release();
  const items = [];
  for (const job of jobs) {
    await waitForJob(s.t.app, job.id);
    items.push(...await allItems(s.t.app, job.id));
  }
  // One item made the request; the other took its outcome without one.
  assert.deepEqual(items.map((i) => i.attempts).sort(), [0, 1]);
  for (const item of items) {
    assert.equal(item.state, "complete");
    assert.equal((item as { revalidated?: boolean }).revalidated, true);
  }
  assert.deepEqual(s.sent().map((r) => r.ifNoneMatch), [null, etag]);
});

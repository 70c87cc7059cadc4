/**
 * Delivery as a CDN expects it, on real stored images: validators and
 * conditional requests, If-Range, Cache-Control, Content-Disposition, and
 * the same bytes by hash at /blobs/{sha256}.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startTestService } from "./support/app.ts";
import { assertProblem, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());
const DAY_MS = 86_400_000;

async function setup(env: Record<string, string> = {}) {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, ...env });
  return {
    origin,
    t,
    app: t.app,
    /** Serves `body` at `path` on the origin, stores it, returns its URL and metadata. */
    async store(path: string, body: Uint8Array) {
      const url = origin.url(path);
      const served = { body, headers: { "content-type": "application/octet-stream" } };
      origin.set(new URL(url).pathname, served);
      await waitForJob(t.app, (await submit(t.app, { urls: [url] })).id);
      const meta = await (await t.app.request(`/images/metadata?url=${encodeURIComponent(url)}`))
        .json();
      return { url, meta, content: meta.contentUrl as string };
    },
    async [Symbol.asyncDispose]() {
      await t.close();
      await origin.close();
    },
  };
}

const get = (app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> }) =>
(
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
) => Promise.resolve(app.request(path, { method, headers }));

Deno.test("content answers carry Last-Modified (storedAt), the default Cache-Control and a file name", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 32, height: 24, seed: 11 });
  const { meta, content } = await s.store("/cats/42.png", png);
  const storedAt = Date.parse(meta.storedAt);

  for (const method of ["GET", "HEAD"]) {
    const res = await get(s.app)(content, {}, method);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("last-modified"), new Date(storedAt).toUTCString());
    assert.equal(Date.parse(res.headers.get("last-modified")!), Math.floor(storedAt / 1000) * 1000);
    assert.equal(res.headers.get("cache-control"), "public, max-age=3600");
    assert.equal(res.headers.get("content-disposition"), 'inline; filename="42.png"');
    assert.equal(res.headers.get("etag"), `"${sha256(png)}"`);
    if (method === "GET") assert.deepEqual(await bytesOf(res), png);
    else assert.equal((await bytesOf(res)).byteLength, 0);
  }
});

Deno.test("If-Modified-Since: 304 unless stored later; invalid dates and a present If-None-Match win", async () => {
  await using s = await setup();
  const jpeg = await makeImage("jpeg", { width: 40, height: 30, seed: 12 });
  const { content } = await s.store("/ims.jpg", jpeg);
  const head = await get(s.app)(content, {}, "HEAD");
  const lastModified = head.headers.get("last-modified")!;
  const etag = head.headers.get("etag")!;
  const lm = Date.parse(lastModified);
  const at = (ms: number) => new Date(ms).toUTCString();
  const req = get(s.app);

  const same = await req(content, { "if-modified-since": lastModified });
  assert.equal(same.status, 304);
  assert.equal(same.headers.get("etag"), etag);
  assert.equal(same.headers.get("last-modified"), lastModified);
  assert.equal(same.headers.get("cache-control"), "public, max-age=3600");
  assert.equal(same.body, null);

  assert.equal((await req(content, { "if-modified-since": at(lm + DAY_MS) })).status, 304);
  assert.equal((await req(content, { "if-modified-since": at(lm + DAY_MS) }, "HEAD")).status, 304);
  // The obsolete RFC 850 form is a valid HTTP-date too.
  const rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT";
  assert.equal((await req(content, { "if-modified-since": rfc850 })).status, 200);

  const earlier = await req(content, { "if-modified-since": at(lm - 1000) });
  assert.equal(earlier.status, 200);
  assert.deepEqual(await bytesOf(earlier), jpeg);

  for (const invalid of ["not a date", "2999-01-01T00:00:00Z", `${at(lm + DAY_MS)}, x`]) {
    const res = await req(content, { "if-modified-since": invalid });
    assert.equal(res.status, 200, invalid);
    await res.body?.cancel();
  }

  const otherTag = await req(content, {
    "if-none-match": '"0000"',
    "if-modified-since": at(lm + DAY_MS),
  });
  assert.equal(otherTag.status, 200, "If-Modified-Since is ignored when If-None-Match is sent");
  assert.deepEqual(await bytesOf(otherTag), jpeg);
  const sameTag = await req(content, {
    "if-none-match": etag,
    "if-modified-since": at(lm - DAY_MS),
  });
  assert.equal(sameTag.status, 304);
});

Deno.test("If-Range: the strong ETag or the exact Last-Modified keeps the range; anything else gets the whole image", async () => {
  await using s = await setup();
  const gif = await makeImage("gif", { width: 30, height: 30, seed: 13 });
  const { content } = await s.store("/if-range.gif", gif);
  const head = await get(s.app)(content, {}, "HEAD");
  const etag = head.headers.get("etag")!;
  const lastModified = head.headers.get("last-modified")!;
  const range = { range: "bytes=5-14" };
  const req = get(s.app);

  for (const validator of [etag, lastModified]) {
    const part = await req(content, { ...range, "if-range": validator });
    assert.equal(part.status, 206, validator);
    assert.equal(part.headers.get("content-range"), `bytes 5-14/${gif.byteLength}`);
    assert.deepEqual(await bytesOf(part), gif.subarray(5, 15));
  }

  const others = [
    '"not-the-etag"',
    `W/${etag}`,
    new Date(Date.parse(lastModified) - 1000).toUTCString(),
    new Date(Date.parse(lastModified) + 1000).toUTCString(),
    "garbage",
  ];
  for (const validator of others) {
    const whole = await req(content, { ...range, "if-range": validator });
    assert.equal(whole.status, 200, validator);
    assert.equal(whole.headers.get("content-range"), null);
    assert.deepEqual(await bytesOf(whole), gif, validator);
  }

  // A range that could not be served is ignored, not refused, when If-Range fails.
  const outside = { range: `bytes=${gif.byteLength}-`, "if-range": '"other"' };
  const notRefused = await req(content, outside);
  assert.equal(notRefused.status, 200);
  await notRefused.body?.cancel();
});

Deno.test("Cache-Control of content follows CONTENT_CACHE_CONTROL", async () => {
  await using s = await setup({ CONTENT_CACHE_CONTROL: "public, max-age=60, s-maxage=600" });
  const png = await makeImage("png", { width: 8, height: 8, seed: 14 });
  const { content, meta } = await s.store("/cc.png", png);
  const res = await get(s.app)(content);
  assert.equal(res.headers.get("cache-control"), "public, max-age=60, s-maxage=600");
  await res.body?.cancel();
  // Blobs never change under their hash: immutable whatever the setting.
  const blob = await get(s.app)(meta.blobUrl);
  assert.equal(blob.headers.get("cache-control"), "public, max-age=31536000, immutable");
  await blob.body?.cancel();
});

Deno.test("Content-Disposition names the file from the URL's path, with the served format's extension", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 9, height: 9, seed: 15 });
  const cases: [string, string][] = [
    ["/dl/index.php?id=3", 'inline; filename="index.png"'],
    ["/dl/", 'inline; filename="image.png"'],
    [
      "/dl/a%2Fb%3B%22c%22.png",
      `inline; filename="a_b__c_.png"; filename*=UTF-8''a_b%3B%22c%22.png`,
    ],
    ["/dl/caf%C3%A9.PNG", `inline; filename="caf_.PNG"; filename*=UTF-8''caf%C3%A9.PNG`],
    ["/dl/x%0D%0ASet-Cookie:%20a=1", 'inline; filename="x__Set-Cookie: a=1.png"'],
  ];
  for (const [path, expected] of cases) {
    const { content } = await s.store(path, png);
    const res = await get(s.app)(content);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("content-disposition"), expected, path);
    assert.equal(res.headers.get("set-cookie"), null);
    await res.body?.cancel();
  }
});

Deno.test("GET and HEAD /blobs/{sha256} serve the bytes by hash: ranges, 304, 416, immutable", async () => {
  await using s = await setup();
  const webp = await makeImage("webp", { width: 50, height: 40, seed: 16 });
  const { meta, url } = await s.store("/b.webp", webp);
  const hash = sha256(webp);
  assert.equal(meta.blobUrl, `/blobs/${hash}`);
  const listed = await (await s.app.request("/images")).json();
  assert.equal(listed.items.find((i: { url: string }) => i.url === url).blobUrl, `/blobs/${hash}`);
  const req = get(s.app);

  const whole = await req(meta.blobUrl);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get("content-type"), "image/webp");
  assert.equal(whole.headers.get("etag"), `"${hash}"`);
  assert.equal(whole.headers.get("cache-control"), "public, max-age=31536000, immutable");
  assert.equal(whole.headers.get("x-content-type-options"), "nosniff");
  assert.equal(whole.headers.get("cross-origin-resource-policy"), "cross-origin");
  assert.equal(whole.headers.get("content-disposition"), null);
  const lastModified = whole.headers.get("last-modified")!;
  assert.ok(Math.abs(Date.parse(lastModified) - Date.parse(meta.storedAt)) < 60_000, lastModified);
  assert.deepEqual(await bytesOf(whole), webp);

  const head = await req(meta.blobUrl, {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(webp.byteLength));
  assert.equal(head.headers.get("accept-ranges"), "bytes");
  assert.equal((await bytesOf(head)).byteLength, 0);

  const part = await req(meta.blobUrl, { range: "bytes=-7" });
  assert.equal(part.status, 206);
  assert.equal(
    part.headers.get("content-range"),
    `bytes ${webp.byteLength - 7}-${webp.byteLength - 1}/${webp.byteLength}`,
  );
  assert.deepEqual(await bytesOf(part), webp.subarray(webp.byteLength - 7));

  assert.equal((await req(meta.blobUrl, { "if-none-match": `W/"${hash}"` })).status, 304);
  assert.equal((await req(meta.blobUrl, { "if-modified-since": lastModified })).status, 304);
  const ifRange = await req(meta.blobUrl, { range: "bytes=0-3", "if-range": `"${hash}"` });
  assert.equal(ifRange.status, 206);
  assert.deepEqual(await bytesOf(ifRange), webp.subarray(0, 4));
  const weak = await req(meta.blobUrl, { range: "bytes=0-3", "if-range": `W/"${hash}"` });
  assert.equal(weak.status, 200);
  assert.deepEqual(await bytesOf(weak), webp);

  const outside = await req(meta.blobUrl, { range: `bytes=${webp.byteLength}-` });
  assert.equal(outside.headers.get("content-range"), `bytes */${webp.byteLength}`);
  await assertProblem(outside, 416);
});

Deno.test("/blobs streams blobs too large for the memory cache, typed from their bytes", async () => {
  // Every blob over 100 bytes is streamed from disk, never read whole.
  await using s = await setup({ CONTENT_CACHE_ITEM_BYTES: "100" });
  const jpeg = await makeImage("jpeg", { width: 300, height: 200, targetBytes: 60_000, seed: 17 });
  const { meta } = await s.store("/big.jpg", jpeg);
  const res = await get(s.app)(meta.blobUrl);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "image/jpeg");
  assert.equal(res.headers.get("content-length"), String(jpeg.byteLength));
  assert.deepEqual(await bytesOf(res), jpeg);
  const part = await get(s.app)(meta.blobUrl, { range: "bytes=30000-30099" });
  assert.equal(part.status, 206);
  assert.deepEqual(await bytesOf(part), jpeg.subarray(30000, 30100));
});

Deno.test("/blobs answers 400 for a malformed hash and 404 for one nothing stored refers to", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 6, height: 6, seed: 18 });
  const { url, meta } = await s.store("/gone.png", png);
  const hex = "0123456789abcdef".repeat(4);

  for (const bad of ["abc", hex.toUpperCase(), `${hex}0`, "g".repeat(64), `%41${hex.slice(3)}`]) {
    for (const method of ["GET", "HEAD"]) {
      const res = await get(s.app)(`/blobs/${bad}`, {}, method);
      if (method === "HEAD") {
        assert.equal(res.status, 400, bad);
        assert.equal(res.headers.get("content-type"), "application/problem+json");
        await res.body?.cancel();
        continue;
      }
      const problem = await assertProblem(res, 400);
      assert.deepEqual(problem.errors.map((e: { field: string }) => e.field), ["sha256"], bad);
    }
  }

  await assertProblem(await get(s.app)(`/blobs/${hex}`), 404);
  await assertProblem(await get(s.app)(`/blobs/${hex}/more`), 404);

  // Bytes on disk that nothing refers to are not served.
  const loose = await s.t.service.blobs.stage(ReadableStream.from([new TextEncoder().encode("x")]));
  await loose.commit();
  assert.ok(await s.t.service.blobs.stat(loose.sha256));
  await assertProblem(await get(s.app)(`/blobs/${loose.sha256}`), 404);

  // Nor are an image's bytes once it is deleted.
  assert.equal((await get(s.app)(meta.blobUrl)).status, 200);
  const del = await s.app.request(`/images?url=${encodeURIComponent(url)}`, { method: "DELETE" });
  assert.equal(del.status, 204);
  await assertProblem(await get(s.app)(meta.blobUrl), 404);
});

Deno.test("/blobs never serves referenced bytes that are missing or are not an image: 500", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 7, height: 7, seed: 19 });
  const bmp = await makeImage("bmp", { width: 7, height: 7, seed: 20 });
  const damaged = await s.store("/damaged.png", png);
  const missing = await s.store("/missing.bmp", bmp);
  const file = (hash: string) => `${s.t.dataDir}/blobs/${hash.slice(0, 2)}/${hash}`;

  await Deno.writeFile(file(sha256(png)), new Uint8Array(png.byteLength));
  const notImage = await assertProblem(await get(s.app)(damaged.meta.blobUrl), 500);
  assert.match(notImage.detail, /not an identifiable image/);

  await Deno.remove(file(sha256(bmp)));
  const gone = await assertProblem(await get(s.app)(missing.meta.blobUrl), 500);
  assert.match(gone.detail, /missing/);
});

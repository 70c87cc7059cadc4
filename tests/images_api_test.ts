import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startTestService } from "./support/app.ts";
import { allItems, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { htmlBytes, makeImage } from "./support/images.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function setup(env: Record<string, string> = {}, alsoAllow: string[] = []) {
  const origin = startImageOrigin();
  const allow = [origin.allowRule, ...alsoAllow].join(",");
  const t = await startTestService({ FETCH_ALLOW_HOSTS: allow, ...env });
  return {
    origin,
    t,
    app: t.app,
    async [Symbol.asyncDispose]() {
      await t.close();
      await origin.close();
    },
  };
}

Deno.test("POST /images downloads in the background; the image can be listed and fetched back by its URL", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 64, height: 48, seed: 1 });
  s.origin.set("/a.png", { body: png, headers: { "content-type": "application/octet-stream" } });
  const url = s.origin.url("/a.png");

  const res = await s.app.request("/images", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ urls: [url] }),
  });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get("content-type"), "application/json");
  const job = await res.json();
  assert.equal(res.headers.get("location"), `/jobs/${job.id}`);
  assert.equal(job.total, 1);
  assert.equal(job.finished, null);

  const done = await waitForJob(s.app, job.id);
  assert.deepEqual(done.counts, { pending: 0, complete: 1, failed: 0 });
  assert.match(done.finished, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  const list = await (await s.app.request("/images")).json();
  assert.equal(list.items.length, 1);
  assert.equal(list.nextCursor, null);
  const image = list.items[0];
  assert.equal(image.url, url);
  assert.equal(image.contentType, "image/png"); // from the bytes, not the header
  assert.equal(image.bytes, png.byteLength);
  assert.equal(image.width, 64);
  assert.equal(image.height, 48);
  assert.equal(image.sha256, sha256(png));

  const content = await s.app.request(image.contentUrl);
  assert.equal(content.status, 200);
  assert.equal(content.headers.get("content-type"), "image/png");
  assert.equal(content.headers.get("etag"), `"${sha256(png)}"`);
  assert.deepEqual(new Uint8Array(await content.arrayBuffer()), png);

  const meta = await s.app.request(`/images/metadata?url=${encodeURIComponent(url)}`);
  assert.equal(meta.status, 200);
  assert.deepEqual(await meta.json(), image);
});

Deno.test("GET /images/content answers HEAD, If-None-Match and single ranges", async () => {
  await using s = await setup();
  const jpeg = await makeImage("jpeg", { width: 80, height: 60, seed: 2 });
  s.origin.set("/b.jpg", { body: jpeg });
  const url = s.origin.url("/b.jpg");
  await waitForJob(s.app, (await submit(s.app, { urls: [url] })).id);
  const path = `/images/content?url=${encodeURIComponent(url)}`;

  const head = await s.app.request(path, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(jpeg.byteLength));
  assert.equal(head.headers.get("content-type"), "image/jpeg");
  assert.equal((await head.arrayBuffer()).byteLength, 0);

  const etag = head.headers.get("etag")!;
  const cached = await s.app.request(path, { headers: { "if-none-match": etag } });
  assert.equal(cached.status, 304);

  const part = await s.app.request(path, { headers: { range: "bytes=10-19" } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-range"), `bytes 10-19/${jpeg.byteLength}`);
  assert.deepEqual(new Uint8Array(await part.arrayBuffer()), jpeg.subarray(10, 20));

  const tail = await s.app.request(path, { headers: { range: "bytes=-5" } });
  assert.deepEqual(new Uint8Array(await tail.arrayBuffer()), jpeg.subarray(jpeg.byteLength - 5));

  const outside = await s.app.request(path, { headers: { range: `bytes=${jpeg.byteLength}-` } });
  assert.equal(outside.status, 416);
  assert.equal(outside.headers.get("content-range"), `bytes */${jpeg.byteLength}`);
  await outside.body?.cancel();
});

Deno.test("unknown URLs answer 404 problems on content and metadata", async () => {
  await using s = await setup();
  for (const path of ["/images/content", "/images/metadata"]) {
    const res = await s.app.request(
      `${path}?url=${encodeURIComponent("https://nowhere.invalid/x.png")}`,
    );
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    assert.equal((await res.json()).status, 404);
  }
});

Deno.test("repeated URLs in one request count once, and identical bytes are stored once", async () => {
  await using s = await setup();
  const gif = await makeImage("gif", { width: 10, height: 10, seed: 3 });
  s.origin.set("/one.gif", { body: gif });
  s.origin.set("/two.gif", { body: gif });
  const one = s.origin.url("/one.gif");
  const two = s.origin.url("/two.gif");
  const job = await submit(s.app, { urls: [one, two, one, one] });
  assert.equal(job.total, 2);
  await waitForJob(s.app, job.id);
  assert.equal(s.origin.hits("/one.gif"), 1);
  const hashes: string[] = [];
  for await (const h of s.t.service.blobs.list()) hashes.push(h);
  assert.deepEqual(hashes, [sha256(gif)]);
  const list = await (await s.app.request("/images")).json();
  // Listed in the order they were stored, which downloads in parallel do not fix.
  assert.deepEqual(list.items.map((i: { url: string }) => i.url).sort(), [one, two].sort());
});

Deno.test("a stored URL completes at once without a download unless refresh is asked", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 5, height: 5, seed: 4 });
  s.origin.set("/c.png", { body: png });
  const url = s.origin.url("/c.png");
  await waitForJob(s.app, (await submit(s.app, { urls: [url] })).id);
  assert.equal(s.origin.hits("/c.png"), 1);

  const again = await submit(s.app, { urls: [url] });
  assert.equal(again.status, "complete");
  assert.deepEqual(again.counts, { pending: 0, complete: 1, failed: 0 });
  assert.equal(s.origin.hits("/c.png"), 1);

  const contentPath = `/images/content?url=${encodeURIComponent(url)}`;
  assert.deepEqual(new Uint8Array(await (await s.app.request(contentPath)).arrayBuffer()), png);

  const newer = await makeImage("png", { width: 7, height: 3, seed: 5 });
  s.origin.set("/c.png", { body: newer });
  await waitForJob(s.app, (await submit(s.app, { urls: [url], refresh: true })).id);
  assert.equal(s.origin.hits("/c.png"), 2);
  const meta = await (await s.app.request(`/images/metadata?url=${encodeURIComponent(url)}`))
    .json();
  assert.equal(meta.width, 7);
  assert.equal(meta.sha256, sha256(newer));
  // Served bytes follow the refresh at once, though the old ones were just served.
  assert.deepEqual(new Uint8Array(await (await s.app.request(contentPath)).arrayBuffer()), newer);
  const list = await (await s.app.request("/images")).json();
  assert.equal(list.items.length, 1, "a refreshed URL keeps one entry");
});

Deno.test("two jobs naming the same URL download it once", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 9, height: 9, seed: 6 });
  s.origin.set("/slow.png", { body: png, delayMs: 300 });
  const url = s.origin.url("/slow.png");
  const [a, b] = await Promise.all([
    submit(s.app, { urls: [url] }),
    submit(s.app, { urls: [url] }),
  ]);
  const [ja, jb] = await Promise.all([waitForJob(s.app, a.id), waitForJob(s.app, b.id)]);
  assert.equal(ja.counts.complete, 1);
  assert.equal(jb.counts.complete, 1);
  assert.equal(s.origin.hits("/slow.png"), 1);
});

Deno.test("job items page in order, filter by state, and carry failure reasons", async () => {
  await using s = await setup({ FETCH_RETRIES: "0" });
  const png = await makeImage("png", { width: 3, height: 3, seed: 7 });
  const urls: string[] = [];
  for (let i = 0; i < 25; i++) {
    s.origin.set(`/ok${i}.png`, {
      body: await makeImage("png", { width: 3, height: 3 + i, seed: i }),
    });
    urls.push(s.origin.url(`/ok${i}.png`));
  }
  s.origin.set("/page.png", { body: htmlBytes(), headers: { "content-type": "image/png" } });
  s.origin.set("/big.png", { body: png });
  urls.push(s.origin.url("/missing.png"), s.origin.url("/page.png"));
  const job = await submit(s.app, { source_url: urls });
  const done = await waitForJob(s.app, job.id);
  assert.deepEqual(done.counts, { pending: 0, complete: 25, failed: 2 });

  const items = await allItems(s.app, job.id, "limit=7");
  assert.deepEqual(items.map((i) => i.url), urls);
  assert.deepEqual(items.map((i) => i.index), urls.map((_, i) => i));

  const failed = await allItems(s.app, job.id, "state=failed&limit=1");
  assert.deepEqual(failed.map((i) => [i.url, i.state, i.reason]), [
    [s.origin.url("/missing.png"), "failed", "http_404"],
    [s.origin.url("/page.png"), "failed", "not_an_image"],
  ]);
  assert.equal(failed[0].attempts, 1);
  const complete = await allItems(s.app, job.id, "state=complete&limit=10");
  assert.equal(complete.length, 25);
  assert.deepEqual(await allItems(s.app, job.id, "state=pending"), []);
});

Deno.test("download failures end with their reasons: unreachable, too_large, timeout, blocked_address", async () => {
  // A port that was listening a moment ago and is now closed: connections are refused on loopback.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await using s = await setup({
    FETCH_RETRIES: "0",
    MAX_IMAGE_BYTES: "1000",
    FETCH_TIMEOUT_MS: "500",
    FETCH_CONNECT_TIMEOUT_MS: "300",
    FETCH_STALL_TIMEOUT_MS: "300",
  }, [`127.0.0.1:${closedPort}`]);
  s.origin.set("/huge.png", {
    body: await makeImage("png", { width: 200, height: 200, seed: 9, targetBytes: 20_000 }),
  });
  s.origin.set("/slow.png", {
    body: await makeImage("png", { width: 2, height: 2 }),
    delayMs: 2_000,
  });
  // Headers at once, then a real PNG one byte every 100 ms: never stalls, never ends in time.
  const dripped = await makeImage("png", { width: 40, height: 40, seed: 10 });
  s.origin.set("/drip.png", {
    respond: () => {
      let timer: ReturnType<typeof setInterval>;
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          timer = setInterval(() => {
            if (sent < dripped.byteLength) controller.enqueue(dripped.slice(sent, ++sent));
          }, 100);
        },
        cancel: () => clearInterval(timer),
      });
      return new Response(body, { headers: { "content-type": "image/png" } });
    },
  });
  const blockedPort = s.origin.port + 1;
  const urls = {
    unreachable: `http://127.0.0.1:${closedPort}/x.png`,
    too_large: s.origin.url("/huge.png"),
    timeout: s.origin.url("/slow.png"),
    drip: s.origin.url("/drip.png"),
    blocked_address: `http://127.0.0.1:${blockedPort}/x.png`,
  };
  const job = await submit(s.app, { urls: Object.values(urls) });
  await waitForJob(s.app, job.id);
  const items = await allItems(s.app, job.id);
  for (const [expected, url] of Object.entries(urls)) {
    const item = items.find((i) => i.url === url)!;
    assert.equal(item.state, "failed", url);
    assert.equal(item.reason, expected === "drip" ? "timeout" : expected, url);
  }
  // Nothing is left holding a download slot.
  assert.equal(s.t.service.worker.stats().running, 0);
});

Deno.test("the same operations work through a real Deno.serve on 127.0.0.1", async () => {
  await using s = await setup();
  const webp = await makeImage("webp", { width: 30, height: 20, seed: 11, targetBytes: 40_000 });
  s.origin.set("/w.webp", { body: webp, headers: { "content-type": "text/plain" } });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, s.app.fetch);
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const url = s.origin.url("/w.webp");
    const posted = await fetch(`${base}/images`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ urls: [url] }),
    });
    assert.equal(posted.status, 202);
    const job = await posted.json();
    await waitForJob({ request: (p: string) => fetch(base + p) }, job.id);

    const content = await fetch(`${base}/images/content?url=${encodeURIComponent(url)}`);
    assert.equal(content.status, 200);
    assert.equal(content.headers.get("content-type"), "image/webp");
    assert.equal(content.headers.get("content-length"), String(webp.byteLength));
    assert.equal(content.headers.get("cross-origin-resource-policy"), "cross-origin");
    assert.deepEqual(new Uint8Array(await content.arrayBuffer()), webp);

    const head = await fetch(`${base}/images/content?url=${encodeURIComponent(url)}`, {
      method: "HEAD",
    });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(webp.byteLength));
    await head.body?.cancel();

    const bad = await fetch(`${base}/images`, {
      method: "POST",
      body: "{",
      headers: { "content-type": "application/json" },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get("content-type"), "application/problem+json");
    await bad.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("a job is reported complete only together with its finished time", async () => {
  await using s = await setup();
  const png = await makeImage("png", { width: 8, height: 8, seed: 11 });
  const urls = [];
  for (let i = 0; i < 20; i++) {
    s.origin.set(`/c${i}.png`, { body: png });
    urls.push(s.origin.url(`/c${i}.png`));
  }
  const job = await submit(s.app, { urls });
  // Poll as fast as possible: every answer must be consistent.
  for (;;) {
    const view = await (await s.app.request(`/jobs/${job.id}`)).json();
    assert.equal(view.status === "complete", view.finished !== null, JSON.stringify(view));
    if (view.status === "complete") break;
    await new Promise((r) => setTimeout(r, 0));
  }
});

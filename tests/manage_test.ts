/**
 * PUT /images/content, POST /images/refresh and the GET /images filters,
 * end to end on the real service with a real origin on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";
import { assertProblem, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import { findImages } from "../services/store/image_search.ts";
import { assertNothingStored, bytes, sha256, statusForDeclaredLength } from "./support/uploads.ts";

async function setup(env: Record<string, string> = {}) {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, ...env });
  return Object.assign(t, {
    origin,
    async [Symbol.asyncDispose]() {
      await t.close();
      await origin.close();
    },
  });
}

type App = { request(path: string, init?: RequestInit): Response | Promise<Response> };

const put = (app: App, key: string, body: Uint8Array | ReadableStream<Uint8Array>) =>
  Promise.resolve(app.request(`/images/content?url=${encodeURIComponent(key)}`, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: body instanceof Uint8Array ? bytes(body) : body,
  }));

/** Every item of a listing, following nextCursor; also the page sizes. */
async function listAll(app: App, query: string) {
  const urls: string[] = [];
  const pages: number[] = [];
  let cursor: string | null = null;
  do {
    const qs = new URLSearchParams(query);
    if (cursor) qs.set("cursor", cursor);
    const res = await app.request(`/images?${qs}`);
    assert.equal(res.status, 200, await res.clone().text());
    const page = await res.json();
    urls.push(...page.items.map((i: { url: string }) => i.url));
    pages.push(page.items.length);
    cursor = page.nextCursor;
  } while (cursor);
  return { urls, pages };
}

Deno.test("PUT /images/content creates (201) then replaces (200) the image under a key", async () => {
  await using t = await setup();
  const first = await makeImage("png", { width: 12, height: 10, seed: 1 });
  const second = await makeImage("webp", { width: 20, height: 16, seed: 2 });
  const key = "upload:avatar-42";

  const created = await put(t.app, key, first);
  assert.equal(created.status, 201, await created.clone().text());
  assert.equal(created.headers.get("location"), "/images/metadata?url=upload%3Aavatar-42");
  const a = await created.json();
  assert.equal(a.sha256, sha256(first));
  assert.equal(a.origin, "upload");

  const replaced = await put(t.app, key, second);
  assert.equal(replaced.status, 200);
  assert.equal(replaced.headers.get("location"), null);
  const b = await replaced.json();
  assert.equal(b.sha256, sha256(second));
  assert.equal(b.contentType, "image/webp");
  assert.deepEqual([b.width, b.height], [20, 16]);

  const meta = await (await t.app.request(`/images/metadata?url=${encodeURIComponent(key)}`))
    .json();
  assert.deepEqual(meta, b);
  const content = await t.app.request(b.contentUrl);
  assert.deepEqual(new Uint8Array(await content.arrayBuffer()), second);
  const list = await (await t.app.request("/images")).json();
  assert.equal(list.items.length, 1);
});

Deno.test("PUT /images/content refuses bad keys, non-images, empty and oversized bodies, storing nothing", async () => {
  await using t = await setup({ MAX_IMAGE_BYTES: "50000" });
  const png = await makeImage("png", { width: 10, height: 10 });
  await assertProblem(await put(t.app, "not a url", png), 400);
  await assertProblem(await put(t.app, "upload:", png), 400);
  await assertProblem(await put(t.app, "upload:k", new Uint8Array(0)), 400);
  const text = await assertProblem(
    await put(t.app, "upload:k", new TextEncoder().encode("hello")),
    415,
  );
  assert.equal(text.type, "urn:image-ingest:problem:not_an_image");

  const big = await makeImage("png", { width: 200, height: 200, targetBytes: 120_000 });
  const chunked = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < big.length; i += 8192) c.enqueue(big.slice(i, i + 8192));
      c.close();
    },
  });
  const tooLarge = await assertProblem(await put(t.app, "upload:k", chunked), 413);
  assert.equal(tooLarge.type, "urn:image-ingest:problem:too_large");

  // A declared length over the limit is answered before any of the body is sent.
  const declared = await statusForDeclaredLength(
    t.app.fetch,
    "PUT /images/content?url=upload:k",
    "image/png",
    60_000,
  );
  assert.equal(declared, 413);
  await assertNothingStored(t.app, t.dataDir);
});

Deno.test("POST /images/refresh downloads a stored URL again as a one-URL refresh job", async () => {
  await using t = await setup();
  const before = await makeImage("png", { width: 10, height: 10, seed: 1 });
  const after = await makeImage("png", { width: 11, height: 11, seed: 2 });
  t.origin.set("/r.png", { body: before });
  const url = t.origin.url("/r.png");
  await waitForJob(t.app, (await submit(t.app, { urls: [url] })).id);

  t.origin.set("/r.png", { body: after });
  const res = await t.app.request(`/images/refresh?url=${encodeURIComponent(url)}`, {
    method: "POST",
  });
  assert.equal(res.status, 202);
  const job = await res.json();
  assert.equal(res.headers.get("location"), `/jobs/${job.id}`);
  assert.equal(job.total, 1);
  const done = await waitForJob(t.app, job.id);
  assert.deepEqual(done.counts, { pending: 0, complete: 1, failed: 0 });
  assert.equal(t.origin.hits("/r.png"), 2);
  const meta = await (await t.app.request(`/images/metadata?url=${encodeURIComponent(url)}`))
    .json();
  assert.equal(meta.sha256, sha256(after));
  assert.equal(meta.origin, "download");
});

Deno.test("POST /images/refresh: 404 for a URL not stored, 409 for an uploaded key", async () => {
  await using t = await setup();
  const refresh = (key: string) =>
    t.app.request(`/images/refresh?url=${encodeURIComponent(key)}`, { method: "POST" });
  await assertProblem(await refresh(t.origin.url("/never.png")), 404);
  const png = await makeImage("png", { width: 10, height: 10 });
  assert.equal((await put(t.app, "upload:mine", png)).status, 201);
  const conflict = await assertProblem(await refresh("upload:mine"), 409);
  assert.match(conflict.detail, /upload/);
  await assertProblem(await t.app.request("/images/refresh", { method: "POST" }), 400);
  assert.equal(t.origin.totalHits(), 0);
});

Deno.test("GET /images filters by format, since and jobId, alone and combined, through nextCursor", async () => {
  await using t = await setup();
  const image = (format: "png" | "jpeg", seed: number) =>
    makeImage(format, { width: 8 + seed, height: 8, seed });
  // Before `since`: two PNGs and a JPEG, uploaded.
  for (
    const [key, format, seed] of [["upload:p1", "png", 1], ["upload:j1", "jpeg", 2], [
      "upload:p2",
      "png",
      3,
    ]] as const
  ) {
    assert.equal((await put(t.app, key, await image(format, seed))).status, 201);
  }
  await new Promise((r) => setTimeout(r, 5));
  const since = new Date().toISOString();
  // After it: a job downloading a PNG and a JPEG, then one more PNG upload.
  t.origin.set("/d.png", { body: await image("png", 4) });
  t.origin.set("/d.jpg", { body: await image("jpeg", 5) });
  t.origin.set("/missing.png", { status: 404, body: "no" });
  const d = [t.origin.url("/d.png"), t.origin.url("/d.jpg"), t.origin.url("/missing.png")];
  const job = await submit(t.app, { urls: d });
  await waitForJob(t.app, job.id);
  assert.equal((await put(t.app, "upload:p3", await image("png", 6))).status, 201);
  const other = await submit(t.app, { urls: [t.origin.url("/d.png")] });
  await waitForJob(t.app, other.id);

  // Downloads of one job finish in any order: the listing's order is the reference.
  const all = (await listAll(t.app, "limit=2")).urls;
  assert.deepEqual(all.slice(0, 3), ["upload:p1", "upload:j1", "upload:p2"]);
  assert.deepEqual(new Set(all.slice(3, 5)), new Set([d[0], d[1]]));
  assert.equal(all[5], "upload:p3");
  const isPng = (u: string) => u.startsWith("upload:p") || u === d[0];
  const isNew = (u: string) => all.indexOf(u) >= 3;

  const png = await listAll(t.app, "format=png&limit=1");
  assert.deepEqual(png.urls, all.filter(isPng));
  assert.ok(png.pages.every((n) => n <= 1));
  assert.deepEqual(
    (await listAll(t.app, `since=${encodeURIComponent(since)}`)).urls,
    all.filter(isNew),
  );
  assert.deepEqual(
    (await listAll(t.app, `format=png&since=${encodeURIComponent(since)}&limit=1`)).urls,
    all.filter((u) => isPng(u) && isNew(u)),
  );
  // The job's completed URLs only (the 404 failed), in the job's order.
  assert.deepEqual((await listAll(t.app, `jobId=${job.id}&limit=1`)).urls, [d[0], d[1]]);
  assert.deepEqual((await listAll(t.app, `jobId=${job.id}&format=jpeg`)).urls, [d[1]]);
  assert.deepEqual((await listAll(t.app, `jobId=${other.id}`)).urls, [d[0]]);
  // A time offset other than Z is RFC 3339 too.
  const offset = since.replace("Z", "+00:00");
  assert.deepEqual(
    (await listAll(t.app, `jobId=${job.id}&since=${encodeURIComponent(offset)}`)).urls,
    [d[0], d[1]],
  );
});

Deno.test("GET /images filters: unknown job 404; bad format, since, jobId or cursor 400", async () => {
  await using t = await setup();
  const png = await makeImage("png", { width: 10, height: 10 });
  await put(t.app, "upload:a", png);
  await put(t.app, "upload:b", png);
  await assertProblem(await t.app.request("/images?jobId=01KAQ4Z3T7V6B6XG5N3W2R8M9C"), 404);
  for (
    const q of [
      "format=svg",
      "format=PNG",
      "since=yesterday",
      "since=2026-11-23",
      "since=2026-11-23T18:00:00",
      "jobId=nope",
    ]
  ) {
    await assertProblem(await t.app.request(`/images?${q}`), 400);
  }
  // A cursor of the unfiltered listing does not resume a job's listing.
  const page = await (await t.app.request("/images?limit=1")).json();
  assert.notEqual(page.nextCursor, null);
  const job = await submit(t.app, { urls: [t.origin.url("/x.png")] });
  await assertProblem(
    await t.app.request(`/images?jobId=${job.id}&cursor=${page.nextCursor}`),
    400,
  );
});

Deno.test("findImages() stops after its scan budget: a page may hold fewer than asked while more follow", async () => {
  await using t = await setup();
  const png = await makeImage("png", { width: 10, height: 10, seed: 1 });
  const jpeg = await makeImage("jpeg", { width: 10, height: 10, seed: 2 });
  for (const key of ["upload:1", "upload:2", "upload:3"]) await put(t.app, key, png);
  await put(t.app, "upload:4", jpeg);
  const { images, jobs } = t.service;
  const first = await findImages(images, jobs, { format: "jpeg" }, 1, undefined, 2);
  assert.deepEqual(first.items, []);
  assert.notEqual(first.last, null);
  const second = await findImages(images, jobs, { format: "jpeg" }, 1, first.last!, 2);
  assert.deepEqual(second.items.map((r) => r.url), ["upload:4"]);
  assert.equal(second.last, null);
});

/**
 * Named variants: asked for at submission, kept in the image's metadata
 * (also for URLs stored before), listed in the job's results, computed
 * before each item completes.
 */
import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";
import { assertProblem, postJson, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import sharp from "sharp";

const thumb = { name: "thumb", w: 32, format: "webp" };
const small = { name: "small", w: 16, h: 16, fit: "cover", format: "jpeg", quality: 70 };

async function setup() {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule });
  for (const [i, path] of ["/a.jpg", "/b.jpg"].entries()) {
    origin.set(path, { body: await makeImage("jpeg", { width: 64, height: 48, seed: 40 + i }) });
  }
  return {
    origin,
    t,
    async [Symbol.asyncDispose]() {
      await t.close();
      await origin.close();
    },
  };
}

const metadata = async (s: Awaited<ReturnType<typeof setup>>, url: string) =>
  await (await s.t.app.request(`/images/metadata?url=${encodeURIComponent(url)}`)).json();

Deno.test("variants asked for by a job are kept in the metadata of its images, new and already stored, and listed in its results", async () => {
  await using s = await setup();
  const [a, b] = [s.origin.url("/a.jpg"), s.origin.url("/b.jpg")];
  // `a` is stored first by a job without variants.
  await waitForJob(s.t.app, (await submit(s.t.app, { urls: [a] })).id);
  assert.deepEqual((await metadata(s, a)).variants, []);

  const job = await submit(s.t.app, { urls: [a, b], variants: [thumb, small] });
  const done = await waitForJob(s.t.app, job.id);
  assert.deepEqual(done.counts, { pending: 0, complete: 2, failed: 0 });
  assert.equal(s.origin.hits("/a.jpg"), 1, "a stored URL is not downloaded again for variants");

  for (const url of [a, b]) {
    const meta = await metadata(s, url);
    const link = (name: string) => `/images/content?url=${encodeURIComponent(url)}&variant=${name}`;
    assert.deepEqual(meta.variants, [
      { ...thumb, contentUrl: link("thumb") },
      { ...small, contentUrl: link("small") },
    ]);
  }

  // Computed before the items completed: serving them computes nothing more.
  assert.equal(s.t.service.transforms.stats.computed, 4);
  for (const url of [a, b]) {
    const res = await s.t.app.request(
      `/images/content?url=${encodeURIComponent(url)}&variant=thumb`,
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/webp");
    const out = await sharp(new Uint8Array(await res.arrayBuffer())).metadata();
    assert.deepEqual([out.format, out.width, out.height], ["webp", 32, 24]);
    const card = await s.t.app.request(
      `/images/content?url=${encodeURIComponent(url)}&variant=small`,
    );
    const cardMeta = await sharp(new Uint8Array(await card.arrayBuffer())).metadata();
    assert.deepEqual([cardMeta.format, cardMeta.width, cardMeta.height], ["jpeg", 16, 16]);
  }
  assert.equal(s.t.service.transforms.stats.computed, 4);
  assert.equal(
    (await s.t.app.request(`/images/content?url=${encodeURIComponent(a)}&variant=nope`)).status,
    404,
  );

  const nd = (await (await s.t.app.request(`/jobs/${job.id}/results.ndjson`)).text())
    .trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(nd.map((r) => Object.keys(r.variants)), [["thumb", "small"], [
    "thumb",
    "small",
  ]]);
  assert.equal(nd[1].variants.thumb, `/images/content?url=${encodeURIComponent(b)}&variant=thumb`);

  const csv = (await (await s.t.app.request(`/jobs/${job.id}/results.csv`)).text()).split("\r\n");
  assert.ok(csv[0].endsWith(",variant_thumb,variant_small"), csv[0]);
  assert.ok(csv[1].endsWith(`&variant=small`), csv[1]);

  // A later job naming `thumb` differently replaces that spec; `small` stays.
  const wider = { name: "thumb", w: 48, format: "webp" };
  await waitForJob(s.t.app, (await submit(s.t.app, { urls: [a], variants: [wider] })).id);
  assert.deepEqual((await metadata(s, a)).variants.map((v: { w: number }) => v.w), [16, 48]);
});

Deno.test("bad variants are refused with 400 and create nothing", async () => {
  await using s = await setup();
  const url = s.origin.url("/a.jpg");
  const bad: unknown[] = [
    [thumb, thumb],
    [{ ...thumb, format: "auto" }],
    [{ ...thumb, format: "gif" }],
    [{ ...thumb, w: 0 }],
    [{ ...thumb, w: 8193 }],
    [{ ...thumb, quality: 101 }],
    [{ ...thumb, fit: "zoom" }],
    [{ ...thumb, name: "Thumb" }],
    [{ ...thumb, name: "" }],
    [{ ...thumb, extra: 1 }],
    Array.from({ length: 9 }, (_, i) => ({ ...thumb, name: `v${i}` })),
    "thumb",
  ];
  for (const variants of bad) {
    const body = await assertProblem(await postJson(s.t.app, { urls: [url], variants }), 400);
    assert.ok(body.errors?.some((e: { field: string }) => e.field.startsWith("variants")));
  }
  const jobs = await (await s.t.app.request("/jobs")).json();
  assert.equal(jobs.items.length, 0);
});

Deno.test("transforms by hash: /blobs/{sha256}?w= is cached like any derivative, and deleting the image removes every copy from disk", async () => {
  await using s = await setup();
  const url = s.origin.url("/a.jpg");
  await waitForJob(s.t.app, (await submit(s.t.app, { urls: [url], variants: [thumb] })).id);
  const { sha256 } = await metadata(s, url);
  const res = await s.t.app.request(`/blobs/${sha256}?w=20&format=png`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
  const out = await sharp(new Uint8Array(await res.arrayBuffer())).metadata();
  assert.deepEqual([out.format, out.width], ["png", 20]);
  const ranged = await s.t.app.request(`/blobs/${sha256}?w=20&format=png`, {
    headers: { range: "bytes=0-3" },
  });
  assert.equal(ranged.status, 206);
  assert.deepEqual([...new Uint8Array(await ranged.arrayBuffer())], [0x89, 0x50, 0x4e, 0x47]);
  await assertProblem(await s.t.app.request(`/blobs/${sha256}?variant=thumb`), 400);

  const files = async () => {
    const out: string[] = [];
    for await (const sha of s.t.service.blobs.list()) out.push(sha);
    return out;
  };
  assert.equal((await files()).length, 3, "the original, the thumb variant and the png copy");
  const del = await s.t.app.request(`/images?url=${encodeURIComponent(url)}`, {
    method: "DELETE",
  });
  assert.equal(del.status, 204);
  assert.deepEqual(await files(), []);
  await assertProblem(await s.t.app.request(`/blobs/${sha256}?w=20&format=png`), 404);
});

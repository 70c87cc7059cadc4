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

const thumb = { name: "thumb", w: 32, format: "webp" };
const small = { name: "small", w: 16, h: 16, fit: "cover", format: "png", quality: 80 };

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

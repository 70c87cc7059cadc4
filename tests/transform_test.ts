import assert from "node:assert/strict";
import sharp from "sharp";
import { paramsKey, resolveParams } from "../services/transform/params.ts";
import { serveTransformed } from "../routes/transformed.ts";
import { startTestService } from "./support/app.ts";
import { assertProblem } from "./support/http.ts";
import { makeImage } from "./support/images.ts";
import {
  animatedGif,
  jpegWithExif,
  readBack,
  sidewaysJpeg,
  storeImage,
} from "./support/transform.ts";

const URL_A = "https://images.example.com/a.jpg";

async function setup(env: Record<string, string> = {}) {
  const t = await startTestService(env, { startWorker: false });
  return Object.assign(t, {
    get: (query: string, headers: Record<string, string> = {}, method = "GET") =>
      t.app.request(`/images/content?url=${encodeURIComponent(URL_A)}&${query}`, {
        method,
        headers,
      }),
    transforms: t.service.transforms,
    async [Symbol.asyncDispose]() {
      await t.close();
    },
  });
}

/** A 64x48 JPEG stored under URL_A. */
async function withJpeg(env: Record<string, string> = {}, targetBytes?: number) {
  const s = await setup(env);
  const jpeg = await makeImage("jpeg", { width: 64, height: 48, targetBytes });
  const record = await storeImage(s.service, URL_A, jpeg);
  return Object.assign(s, { record, jpeg });
}

Deno.test("transform: w, h, and both with cover, contain and inside give the sizes documented", async () => {
  await using s = await withJpeg();
  const cases: [string, number, number][] = [
    ["w=32", 32, 24],
    ["h=12", 16, 12],
    ["w=20&h=20&fit=cover", 20, 20],
    ["w=20&h=20&fit=contain", 20, 20],
    ["w=20&h=20&fit=inside", 20, 15],
    ["w=20&h=20", 20, 15], // inside is the default
    ["w=200", 64, 48], // inside never enlarges
    ["w=128&fit=cover", 128, 96], // cover gives the size asked, enlarging
    ["h=96&fit=contain", 128, 96],
  ];
  for (const [query, width, height] of cases) {
    const res = await s.get(query);
    assert.equal(res.status, 200, query);
    assert.equal(res.headers.get("content-type"), "image/jpeg", query);
    const out = await readBack(res);
    assert.deepEqual([out.format, out.width, out.height], ["jpeg", width, height], query);
  }
});

Deno.test("transform: each output format is written and identified, with its type and a strong ETag", async () => {
  await using s = await withJpeg();
  const expected = { webp: "webp", avif: "heif", jpeg: "jpeg", png: "png" };
  for (const [format, read] of Object.entries(expected)) {
    const res = await s.get(`w=16&format=${format}`);
    assert.equal(res.status, 200, format);
    assert.equal(res.headers.get("content-type"), `image/${format}`);
    assert.equal(res.headers.get("vary"), null, "an explicit format does not depend on Accept");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const out = await readBack(res);
    assert.equal(out.format, read);
    assert.equal(out.width, 16);
    assert.match(res.headers.get("etag")!, /^"[0-9a-f]{64}"$/);
    assert.notEqual(res.headers.get("etag"), `"${s.record.sha256}"`);
  }
});

Deno.test("transform: quality changes the bytes of each lossy format", async () => {
  await using s = await withJpeg({}, 6_000);
  for (const format of ["jpeg", "webp", "avif"]) {
    const low = (await readBack(await s.get(`format=${format}&quality=5`))).bytes.length;
    const high = (await readBack(await s.get(`format=${format}&quality=95`))).bytes.length;
    assert.ok(low < high, `${format}: quality 5 gave ${low} bytes, 95 gave ${high}`);
  }
});

Deno.test("transform: format=auto follows Accept (AVIF, else WebP, else the source's JPEG) and varies on it", async () => {
  await using s = await withJpeg();
  const cases: [string | undefined, string][] = [
    ["image/avif,image/webp,*/*", "image/avif"],
    ["image/webp,*/*;q=0.8", "image/webp"],
    ["image/avif;q=0, image/webp", "image/webp"],
    ["*/*", "image/jpeg"],
    ["image/*", "image/jpeg"],
    [undefined, "image/jpeg"],
  ];
  for (const [accept, type] of cases) {
    const res = await s.get("w=16&format=auto", accept ? { accept } : {});
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), type, `Accept: ${accept}`);
    assert.equal(res.headers.get("vary"), "Accept");
    await res.body?.cancel();
  }
});

Deno.test("transform: format=auto gives PNG for a GIF source when neither AVIF nor WebP is accepted, and WebP (not AVIF) when they are", async () => {
  await using s = await setup();
  await storeImage(s.service, URL_A, await makeImage("gif", { width: 20, height: 10 }));
  let res = await s.get("format=auto", { accept: "*/*" });
  assert.equal(res.headers.get("content-type"), "image/png");
  await res.body?.cancel();
  res = await s.get("format=auto", { accept: "image/avif,image/webp" });
  assert.equal(res.headers.get("content-type"), "image/webp");
  await res.body?.cancel();
});

Deno.test("transform: the EXIF orientation is applied (a sideways JPEG comes out upright)", async () => {
  await using s = await setup();
  await storeImage(s.service, URL_A, await sidewaysJpeg(40, 20));
  let out = await readBack(await s.get("format=png"));
  assert.deepEqual([out.width, out.height], [20, 40]);
  out = await readBack(await s.get("w=10"));
  assert.deepEqual([out.format, out.width, out.height], ["jpeg", 10, 20]);
  assert.equal(out.orientation, undefined);
});

Deno.test("transform: metadata is stripped unless metadata=keep", async () => {
  await using s = await setup();
  const source = await jpegWithExif(32, 24);
  assert.equal((await sharp(source).metadata()).exif !== undefined, true);
  await storeImage(s.service, URL_A, source);
  assert.equal((await readBack(await s.get("w=16"))).exif, false);
  assert.equal((await readBack(await s.get("w=16&metadata=keep"))).exif, true);
});

Deno.test("transform: an animated GIF keeps its frames as WebP and is refused (422) as JPEG", async () => {
  await using s = await setup();
  await storeImage(s.service, URL_A, await animatedGif(20, 16, ["#f00", "#0f0", "#00f"]));
  for (const query of ["w=10&format=webp", "w=10"]) {
    const res = await s.get(query);
    assert.equal(res.headers.get("content-type"), "image/webp", query);
    const out = await readBack(res);
    assert.deepEqual([out.pages, out.width, out.height], [3, 10, 8], query);
  }
  for (const format of ["jpeg", "png", "avif"]) {
    const body = await assertProblem(await s.get(`w=10&format=${format}`), 422);
    assert.match(body.detail, /animated \(3 frames\)/);
    assert.match(body.detail, /format=webp/);
  }
  assert.equal(s.transforms.stats.computed, 1, "refusals are decided before encoding");
});

Deno.test("transform: sizes over 8,192 px a side or MAX_IMAGE_PIXELS are refused with 400", async () => {
  await using s = await setup({ MAX_IMAGE_PIXELS: "10000000" });
  await storeImage(s.service, URL_A, await makeImage("jpeg", { width: 48, height: 64 }));
  const cases: [string, string][] = [
    ["w=8193", "w"],
    ["h=9000&fit=cover", "h"],
    ["w=4000&h=4000&fit=contain", "w"], // 16 M pixels
    ["w=8000&fit=cover", "w"], // 8000 x 10667 by the aspect ratio
    ["h=4000&fit=cover", "h"], // 3000 x 4000 fits the side cap but not the pixels
  ];
  for (const [query, field] of cases) {
    const body = await assertProblem(await s.get(query), 400);
    assert.equal(body.errors?.[0]?.field, field, `${query}: ${JSON.stringify(body)}`);
  }
  assert.equal((await s.get("w=2000&h=2000&fit=cover")).status, 200);
});

Deno.test("transform: every bad parameter is a 400 problem naming its field", async () => {
  await using s = await withJpeg();
  const cases: [string, string][] = [
    ["w=0", "w"],
    ["w=abc", "w"],
    ["w=-5", "w"],
    ["w=1.5", "w"],
    ["h=", "h"],
    ["w=010", "w"],
    ["fit=zoom&w=5", "fit"],
    ["quality=101", "quality"],
    ["quality=0", "quality"],
    ["format=gif", "format"],
    ["format=webp&metadata=maybe", "metadata"],
    ["w=5&w=6", "w"],
    ["w=5&widht=6", "widht"],
    ["fit=cover", "fit"],
    ["format=png&quality=50", "quality"],
    ["variant=thumb&w=5", "w"],
    ["variant=Thumb!", "variant"],
  ];
  for (const [query, field] of cases) {
    const body = await assertProblem(await s.get(query), 400);
    assert.ok(
      body.errors?.some((e: { field: string }) => e.field === field),
      `${query}: ${JSON.stringify(body.errors)}`,
    );
  }
  assert.equal(s.transforms.stats.computed, 0);
});

Deno.test("transform: parameters the plain route never knew still leave it untouched", async () => {
  await using s = await withJpeg();
  const res = await s.get("cachebuster=3");
  assert.equal(res.status, 200);
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), s.jpeg);
  assert.equal(s.transforms.stats.computed, 0);
});

Deno.test("transform: a second identical request is served from the cache without transforming, and If-None-Match gives 304", async () => {
  await using s = await withJpeg();
  const first = await s.get("w=16&format=webp");
  const bytes = new Uint8Array(await first.arrayBuffer());
  assert.equal(s.transforms.stats.computed, 1);
  const etag = first.headers.get("etag")!;

  const second = await s.get("format=webp&w=16"); // same parameters, another order
  assert.equal(second.status, 200);
  assert.deepEqual(new Uint8Array(await second.arrayBuffer()), bytes);
  assert.equal(second.headers.get("etag"), etag);
  assert.equal(s.transforms.stats.computed, 1);
  assert.equal(s.transforms.stats.cacheHits, 1);

  const notModified = await s.get("w=16&format=webp", { "if-none-match": etag });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.headers.get("etag"), etag);
  assert.equal(s.transforms.stats.computed, 1);

  const head = await s.get("w=16&format=webp", {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(bytes.length));
  assert.equal(await head.text(), "");

  // Recorded as a derivative of the source, bytes in the blob store.
  const { params } = resolveParams(
    { w: 16, h: null, fit: null, format: "webp", quality: null, metadata: null },
    s.record,
    null,
  );
  const stored = await s.service.derivatives.get(s.record.sha256, paramsKey(params));
  assert.equal(`"${stored?.sha256}"`, etag);
  assert.equal(stored?.contentType, "image/webp");
  assert.deepEqual([stored?.width, stored?.height], [16, 12]);
  assert.notEqual(await s.service.blobs.stat(stored!.sha256), null);
});

Deno.test("transform: 20 identical concurrent requests transform once", async () => {
  await using s = await withJpeg();
  const answers = await Promise.all(
    Array.from({ length: 20 }, () => s.get("w=24&format=webp")),
  );
  const bodies = await Promise.all(answers.map(async (r) => {
    assert.equal(r.status, 200);
    return new Uint8Array(await r.arrayBuffer());
  }));
  assert.equal(s.transforms.stats.computed, 1);
  for (const b of bodies) assert.deepEqual(b, bodies[0]);
});

Deno.test("transform: a full queue answers 503 with Retry-After; cached derivatives are still served", async () => {
  await using s = await withJpeg({ TRANSFORM_CONCURRENCY: "1", TRANSFORM_QUEUE: "1" });
  const cached = await s.get("w=8");
  assert.equal(cached.status, 200);
  await cached.body?.cancel();

  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  const held = [s.transforms.pool.run(() => gate), s.transforms.pool.run(() => gate)];
  assert.deepEqual([s.transforms.pool.running, s.transforms.pool.waiting], [1, 1]);

  const res = await s.get("w=16");
  assert.equal(res.headers.get("retry-after"), "1");
  await assertProblem(res, 503);
  const hit = await s.get("w=8");
  assert.equal(hit.status, 200, "a cached derivative needs no slot");
  await hit.body?.cancel();

  open();
  await Promise.all(held);
  const later = await s.get("w=16");
  assert.equal(later.status, 200);
  await later.body?.cancel();
});

Deno.test("transform: without sharp, transforms answer 501 and the original is still served", async () => {
  const t = await startTestService({}, {
    startWorker: false,
    importSharp: () => Promise.reject(new Error("no sharp here")),
  });
  try {
    const jpeg = await makeImage("jpeg", { width: 16, height: 12 });
    await storeImage(t.service, URL_A, jpeg);
    const path = `/images/content?url=${encodeURIComponent(URL_A)}`;
    for (const query of ["w=8", "w=8", "format=png"]) {
      const body = await assertProblem(await t.app.request(`${path}&${query}`), 501);
      assert.match(body.detail, /not available/);
    }
    assert.equal(t.service.transforms.stats.computed, 0);
    const plain = await t.app.request(path);
    assert.equal(plain.status, 200);
    assert.deepEqual(new Uint8Array(await plain.arrayBuffer()), jpeg);
  } finally {
    await t.close();
  }
});

Deno.test("transform: a BMP source, which libvips cannot decode here, is refused with 422", async () => {
  await using s = await setup();
  await storeImage(s.service, URL_A, await makeImage("bmp", { width: 8, height: 8 }));
  const body = await assertProblem(await s.get("w=4"), 422);
  assert.match(body.detail, /bmp cannot be transformed/);
});

Deno.test("variants: served by name from the image's specs; unknown names 404; made once with the equivalent query", async () => {
  await using s = await setup();
  const jpeg = await makeImage("jpeg", { width: 64, height: 48 });
  await storeImage(s.service, URL_A, jpeg, [
    { name: "thumb", w: 16, format: "webp" },
    { name: "square", w: 20, h: 20, fit: "cover" },
  ]);
  let res = await s.get("variant=thumb");
  assert.equal(res.headers.get("content-type"), "image/webp");
  assert.deepEqual([(await readBack(res)).width], [16]);
  res = await s.get("variant=square");
  const square = await readBack(res);
  assert.deepEqual([square.format, square.width, square.height], ["jpeg", 20, 20]);
  await assertProblem(await s.get("variant=banner"), 404);

  res = await s.get("w=16&format=webp");
  await res.body?.cancel();
  assert.equal(s.transforms.stats.computed, 2, "the query shares the variant's derivative");
});

Deno.test("variants: ensureVariants makes each, reuses the cache, and reports a failure per name", async () => {
  await using s = await setup();
  const gif = await animatedGif(20, 16, ["#f00", "#0f0"]);
  const record = await storeImage(s.service, URL_A, gif);
  const specs = [
    { name: "small", w: 10, format: "webp" as const },
    { name: "still", w: 10, format: "jpeg" as const },
  ];
  const results = await s.transforms.ensureVariants(record, specs);
  assert.equal(results.length, 2);
  const [small, still] = results;
  assert.ok("sha256" in small, JSON.stringify(small));
  assert.deepEqual([small.name, small.contentType, small.width, small.height], [
    "small",
    "image/webp",
    10,
    8,
  ]);
  assert.ok("error" in still && /animated/.test(still.error), JSON.stringify(still));

  const again = await s.transforms.ensureVariants(record, specs.slice(0, 1));
  assert.deepEqual(again, [small]);
  assert.equal(s.transforms.stats.computed, 1);
});

Deno.test("serveTransformed() takes any source and sends the calling route's Cache-Control", async () => {
  await using s = await withJpeg();
  const req = new Request("http://127.0.0.1/blobs/x?w=8&format=png");
  const res = await serveTransformed(req, new URL(req.url).searchParams, s.record, s.transforms, {
    routeParams: [],
    cacheControl: "public, max-age=60",
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("cache-control"), "public, max-age=60");
  assert.equal((await readBack(res)).width, 8);
  const refused = await serveTransformed(
    req,
    new URLSearchParams("url=x&w=8"),
    s.record,
    s.transforms,
    { routeParams: [] },
  );
  const body = await assertProblem(refused, 400);
  assert.equal(body.errors[0].field, "url", "only the route's own parameters are skipped");
});

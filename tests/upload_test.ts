/**
 * POST /images/upload end to end: the real service on an in-memory KV and a
 * temporary directory, forms from Deno's own encoder, raw requests and curl
 * on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";
import { assertProblem } from "./support/http.ts";
import { heicBytes, makeImage, pngWithDimensions, svgBytes } from "./support/images.ts";
import { serveApp } from "./support/sse.ts";
import {
  assertNothingStored,
  bytes,
  encodeForm,
  filesOnDisk,
  form,
  rawUpload,
  sha256,
  statusForDeclaredLength,
} from "./support/uploads.ts";

async function setup(env: Record<string, string> = {}) {
  const t = await startTestService(env, { startWorker: false });
  return Object.assign(t, { [Symbol.asyncDispose]: () => t.close() });
}

const upload = (
  t: { app: { request: (p: string, i: RequestInit) => Response | Promise<Response> } },
  body: FormData,
) => Promise.resolve(t.app.request("/images/upload", { method: "POST", body }));

Deno.test("upload: PNG, JPEG and WebP are stored under upload:<sha256> and served back identical", async () => {
  await using t = await setup();
  const formats = [["png", "image/png"], ["jpeg", "image/jpeg"], ["webp", "image/webp"]] as const;
  for (const [i, [format, type]] of formats.entries()) {
    const image = await makeImage(format, { width: 30 + i, height: 20, seed: i + 1 });
    const res = await upload(t, form([["image", image]]));
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal(res.headers.get("content-type"), "application/json");
    const key = `upload:${sha256(image)}`;
    assert.equal(res.headers.get("location"), `/images/metadata?url=${encodeURIComponent(key)}`);
    const meta = await res.json();
    assert.equal(meta.url, key);
    assert.equal(meta.contentType, type);
    assert.equal(meta.width, 30 + i);
    assert.equal(meta.height, 20);
    assert.equal(meta.bytes, image.byteLength);
    assert.equal(meta.sha256, sha256(image));
    assert.equal(meta.origin, "upload");
    assert.equal(meta.etag, null);

    const again = await t.app.request(res.headers.get("location")!);
    assert.deepEqual(await again.json(), meta);
    const content = await t.app.request(meta.contentUrl);
    assert.equal(content.status, 200);
    assert.equal(content.headers.get("content-type"), type);
    assert.deepEqual(new Uint8Array(await content.arrayBuffer()), image);
  }
});

Deno.test("upload: the url field is the key whether it comes before or after the file", async () => {
  await using t = await setup();
  const a = await makeImage("png", { width: 8, height: 8, seed: 1 });
  const b = await makeImage("png", { width: 9, height: 9, seed: 2 });
  const before = await upload(t, form([["url", "https://example.com/before.png"], ["image", a]]));
  assert.equal(before.status, 201);
  const after = await upload(t, form([["image", b], ["url", "upload:after"]]));
  assert.equal(after.status, 201);
  assert.equal(after.headers.get("location"), "/images/metadata?url=upload%3Aafter");
  for (
    const [key, image] of [["https://example.com/before.png", a], ["upload:after", b]] as const
  ) {
    const res = await t.app.request(`/images/content?url=${encodeURIComponent(key)}`);
    assert.equal(res.status, 200);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), image);
  }
  const list = await (await t.app.request("/images")).json();
  assert.deepEqual(list.items.map((i: { url: string }) => i.url), [
    "https://example.com/before.png",
    "upload:after",
  ]);
});

Deno.test("upload: text, SVG, HEIC and a truncated header are 415 whatever the part says, and nothing is stored", async () => {
  await using t = await setup();
  const png = await makeImage("png", { width: 10, height: 10 });
  const cases: [string, Uint8Array, string][] = [
    ["text", new TextEncoder().encode("just some text, not an image\n"), "not_an_image"],
    ["svg", svgBytes("plain"), "unsupported_format"],
    ["heic", heicBytes(), "unsupported_format"],
    ["truncated png", png.subarray(0, 20), "not_an_image"],
  ];
  for (const [what, body, slug] of cases) {
    // The part claims to be a PNG file: only the bytes count.
    const problem = await assertProblem(await upload(t, form([["image", body]])), 415);
    assert.equal(problem.type, `urn:image-ingest:problem:${slug}`, what);
  }
  await assertNothingStored(t.app, t.dataDir);
});

Deno.test("upload: a header declaring 100k x 100k pixels is 422 too_many_pixels", async () => {
  await using t = await setup();
  const bomb = pngWithDimensions(100_000, 100_000);
  assert.ok(bomb.byteLength < 100);
  const problem = await assertProblem(await upload(t, form([["image", bomb]])), 422);
  assert.equal(problem.type, "urn:image-ingest:problem:too_many_pixels");
  assert.match(problem.detail, /100000x100000/);
  await assertNothingStored(t.app, t.dataDir);
});

Deno.test("upload: form mistakes are 400 and store nothing", async () => {
  await using t = await setup();
  const png = await makeImage("png", { width: 10, height: 10 });
  const cases: [string, FormData][] = [
    ["no image part", form([["url", "upload:x"]])],
    ["two image parts", form([["image", png], ["image", png]])],
    ["empty file", form([["image", new Uint8Array(0)]])],
    ["url over 8 KiB", form([["url", `https://example.com/${"a".repeat(8200)}`], ["image", png]])],
    [
      "url after the file, over 8 KiB",
      form([["image", png], ["url", `upload:${"a".repeat(8200)}`]]),
    ],
    ["not a key", form([["image", png], ["url", "ftp://example.com/a.png"]])],
    ["upload key with a space", form([["url", "upload:a b"], ["image", png]])],
    ["unknown field", form([["image", png], ["file", "x"]])],
  ];
  for (const [what, body] of cases) {
    const res = await upload(t, body);
    assert.equal(res.status, 400, what);
    await assertProblem(res, 400);
  }
  const notForm = await t.app.request("/images/upload", { method: "POST", body: bytes(png) });
  await assertProblem(notForm, 415);
  await assertNothingStored(t.app, t.dataDir);
});

Deno.test("upload: over MAX_IMAGE_BYTES is 413, declared at once or streamed in chunks, and nothing is left", async () => {
  await using t = await setup({ MAX_IMAGE_BYTES: "50000" });
  const big = await makeImage("png", { width: 200, height: 200, targetBytes: 120_000 });
  assert.ok(big.byteLength > 50_000);

  // Streamed with no length (chunked): cut off once the file passes the limit.
  const { type, encoded } = await encodeForm(form([["image", big]]));
  const streamed = await t.app.request("/images/upload", {
    method: "POST",
    headers: { "content-type": type },
    body: new ReadableStream({
      start(c) {
        for (let i = 0; i < encoded.length; i += 4096) c.enqueue(encoded.slice(i, i + 4096));
        c.close();
      },
    }),
  });
  const problem = await assertProblem(streamed, 413);
  assert.equal(problem.type, "urn:image-ingest:problem:too_large");
  await assertNothingStored(t.app, t.dataDir);

  // Declared: answered before any of the body is sent.
  const declared = await statusForDeclaredLength(
    t.app.fetch,
    "POST /images/upload",
    type,
    10_000_000,
  );
  assert.equal(declared, 413);
  await assertNothingStored(t.app, t.dataDir);
});

Deno.test("upload: a client that disconnects halfway leaves no index entry and no file", async () => {
  await using t = await setup();
  const big = await makeImage("png", { width: 400, height: 400, targetBytes: 900_000 });
  const { type, encoded } = await encodeForm(form([["image", big]]));
  const server = serveApp(t.app.fetch);
  try {
    const port = Number(new URL(server.base).port);
    const conn = await rawUpload(port, type, encoded.length, encoded.subarray(0, 600_000));
    // The first part of the file reaches the temporary area before the client goes.
    await waitUntil(async () => (await filesOnDisk(t.dataDir)).length > 0, "a temporary file");
    conn.close();
    await waitUntil(async () => (await filesOnDisk(t.dataDir)).length === 0, "no file left");
  } finally {
    await server.close();
  }
  await assertNothingStored(t.app, t.dataDir);
});

Deno.test("upload: curl -F image=@file stores the file", async () => {
  await using t = await setup();
  const jpeg = await makeImage("jpeg", { width: 64, height: 48, seed: 7 });
  const dir = await Deno.makeTempDir();
  const server = serveApp(t.app.fetch);
  try {
    const path = `${dir}/photo.jpg`;
    await Deno.writeFile(path, jpeg);
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--noproxy",
        "*",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-F",
        `image=@${path}`,
        "-F",
        "url=https://example.com/curl.jpg",
        `${server.base}/images/upload`,
      ],
    }).output();
    const [body, status] = new TextDecoder().decode(out.stdout).split("\n");
    assert.equal(status, "201", new TextDecoder().decode(out.stderr) + body);
    const meta = JSON.parse(body);
    assert.equal(meta.url, "https://example.com/curl.jpg");
    assert.equal(meta.sha256, sha256(jpeg));
    assert.equal(meta.width, 64);
    const content = await fetch(`${server.base}${meta.contentUrl}`);
    assert.deepEqual(new Uint8Array(await content.arrayBuffer()), jpeg);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function waitUntil(check: () => Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

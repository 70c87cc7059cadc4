import assert from "node:assert/strict";
import { keys } from "../services/store/kv_keys.ts";
import type { ItemRecord, JobRecord, RepeatRecord } from "../services/store/records.ts";
import { startTestService, type TestService } from "./support/app.ts";
import { allItems, assertProblem, waitForJob } from "./support/http.ts";
import { type ImageOrigin, startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

async function setup(env: Record<string, string> = {}) {
  const origin = startImageOrigin();
  const png = await makeImage("png", { width: 8, height: 8, seed: 3 });
  for (const name of ["a", "b", "c", "d"]) origin.set(`/${name}.png`, { body: png });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, ...env });
  return {
    origin,
    t,
    async [Symbol.asyncDispose]() {
      await t.close();
      await origin.close();
    },
  };
}

function post(t: TestService, body: BodyInit, contentType?: string, path = "/images") {
  const headers: Record<string, string> = contentType ? { "content-type": contentType } : {};
  return Promise.resolve(t.app.request(path, { method: "POST", headers, body }));
}

async function accepted(res: Response) {
  const text = await res.text();
  assert.equal(res.status, 202, text);
  return JSON.parse(text) as { id: string; total: number; counts: Record<string, number> };
}

async function itemRecords(t: TestService, jobId: string): Promise<ItemRecord[]> {
  const out: ItemRecord[] = [];
  for await (const e of t.service.kv.list<ItemRecord>({ prefix: keys().itemsOf(jobId) })) {
    out.push(e.value);
  }
  return out;
}

async function jobRecord(t: TestService, jobId: string): Promise<JobRecord> {
  return (await t.service.kv.get<JobRecord>(keys().job(jobId))).value!;
}

async function assertStored(t: TestService, origin: ImageOrigin, path: string) {
  const res = await t.app.request(`/images/metadata?url=${encodeURIComponent(origin.url(path))}`);
  assert.equal(res.status, 200, await res.clone().text());
  await res.body?.cancel();
}

Deno.test("a text list with bad lines: valid URLs are downloaded, bad lines fail with their line number", async () => {
  await using s = await setup();
  const body = [
    "# images for the shop",
    s.origin.url("/a.png"),
    "not a url",
    "",
    s.origin.url("/b.png"),
    "ftp://example.com/x.png",
    s.origin.url("/a.png"),
  ].join("\r\n");
  const job = await accepted(await post(s.t, body, "text/plain; charset=utf-8"));
  // Repeats count once; bad lines are items, failed from the start.
  assert.equal(job.total, 4);
  assert.deepEqual(job.counts, { pending: 2, complete: 0, failed: 2 });

  const done = await waitForJob(s.t.app, job.id);
  assert.deepEqual(done.counts, { pending: 0, complete: 2, failed: 2 });
  const items = await allItems(s.t.app, job.id);
  assert.deepEqual(
    items.map((i) => [i.index, i.state, i.reason ?? null]),
    [[0, "complete", null], [1, "failed", "invalid_url"], [2, "complete", null], [
      3,
      "failed",
      "invalid_url",
    ]],
  );
  const failed = items.filter((i) => i.state === "failed") as unknown as { detail: string }[];
  assert.match(failed[0].detail, /^line 3: not an absolute URL$/);
  assert.match(failed[1].detail, /^line 6: only http and https/);
  assert.equal(failed.length, 2);
  for (const item of items) assert.ok(item.state !== "failed" || item.attempts === 0);

  await assertStored(s.t, s.origin, "/a.png");
  await assertStored(s.t, s.origin, "/b.png");
  const records = await itemRecords(s.t, job.id);
  assert.deepEqual(records.map((r) => r.line), [2, 3, 5, 6]);
  assert.equal((await jobRecord(s.t, job.id)).source, "text");
  // The repeated line 7 is recorded against item 0, for the results file.
  const repeat = await s.t.service.kv.get<RepeatRecord>(keys().jobRepeat(job.id, 7));
  assert.deepEqual(repeat.value, { index: 0 });
});

Deno.test("a CSV list keeps its header and every row's columns and line", async () => {
  await using s = await setup();
  const csv = [
    "sku,source_url,note",
    `1,${s.origin.url("/a.png")},"first, with comma"`,
    `2,"${s.origin.url("/b.png")}","two`,
    `lines"`,
    `3,nope,bad`,
    `4,${s.origin.url("/a.png")},again`,
  ].join("\n") + "\n";
  const job = await accepted(await post(s.t, csv, "text/csv"));
  assert.equal(job.total, 3);
  const done = await waitForJob(s.t.app, job.id);
  assert.deepEqual(done.counts, { pending: 0, complete: 2, failed: 1 });
  const record = await jobRecord(s.t, job.id);
  assert.equal(record.source, "csv");
  assert.deepEqual(record.csvHeader, ["sku", "source_url", "note"]);
  const items = await itemRecords(s.t, job.id);
  assert.deepEqual(items.map((i) => [i.line, i.columns, i.state]), [
    [2, ["1", s.origin.url("/a.png"), "first, with comma"], "complete"],
    [3, ["2", s.origin.url("/b.png"), "two\nlines"], "complete"],
    [5, ["3", "nope", "bad"], "failed"],
  ]);
  assert.equal(items[2].detail, "line 5: not an absolute URL");
  const repeat = await s.t.service.kv.get<RepeatRecord>(keys().jobRepeat(job.id, 6));
  assert.deepEqual(repeat.value, { index: 0, columns: ["4", s.origin.url("/a.png"), "again"] });
});

Deno.test("multipart/form-data: the list in `file`, with `refresh` and a CSV judged by file name", async () => {
  await using s = await setup();
  const form = new FormData();
  form.append("refresh", "true");
  form.append(
    "file",
    new File([`url\n${s.origin.url("/c.png")}\n`], "export.csv", {
      type: "application/octet-stream",
    }),
  );
  const req = new Request("http://localhost/images", { method: "POST", body: form });
  const job = await accepted(await s.t.app.request(req));
  const done = await waitForJob(s.t.app, job.id);
  assert.deepEqual(done.counts, { pending: 0, complete: 1, failed: 0 });
  const record = await jobRecord(s.t, job.id);
  assert.equal(record.source, "csv");
  assert.equal(record.refresh, true);
  assert.deepEqual(record.csvHeader, ["url"]);
  await assertStored(s.t, s.origin, "/c.png");
});

Deno.test("multipart/form-data sent by curl -F to the service on loopback", async () => {
  await using s = await setup();
  const dir = await Deno.makeTempDir();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, s.t.app.fetch);
  try {
    const file = `${dir}/urls.txt`;
    await Deno.writeTextFile(file, `${s.origin.url("/d.png")}\nbad line\n`);
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "-F",
        `file=@${file}`,
        "-F",
        "refresh=false",
        `http://127.0.0.1:${server.addr.port}/images`,
      ],
      stdout: "piped",
    }).output();
    assert.equal(out.code, 0);
    const job = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(job.total, 2);
    const done = await waitForJob(s.t.app, job.id);
    assert.deepEqual(done.counts, { pending: 0, complete: 1, failed: 1 });
    assert.equal((await jobRecord(s.t, job.id)).source, "text");
    await assertStored(s.t, s.origin, "/d.png");
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad list bodies are refused with problem+json and write nothing", async (t) => {
  const svc = await startTestService({}, { startWorker: false });
  const formOf = (parts: [string, string | File][]) => {
    const form = new FormData();
    for (const [k, v] of parts) form.append(k, v);
    return new Request("http://localhost/images", { method: "POST", body: form });
  };
  const list = "https://images.example.com/a.png\n";
  const cases: [string, () => Promise<Response>, number][] = [
    [
      "a form without `file`",
      () => Promise.resolve(svc.app.request(formOf([["refresh", "true"]]))),
      400,
    ],
    [
      "an unknown form field",
      () => Promise.resolve(svc.app.request(formOf([["file", list], ["colour", "red"]]))),
      400,
    ],
    [
      "a `file` that is not a list",
      () =>
        Promise.resolve(
          svc.app.request(formOf([["file", new File(["x"], "a.bin", { type: "image/png" })]])),
        ),
      415,
    ],
    [
      "a form cut short",
      () =>
        post(
          svc,
          `--XYZ\r\nContent-Disposition: form-data; name="file"\r\n\r\n${list}`,
          "multipart/form-data; boundary=XYZ",
        ),
      400,
    ],
    ["multipart without boundary", () => post(svc, "x", "multipart/form-data"), 400],
    [
      "a bad `refresh` field",
      () => Promise.resolve(svc.app.request(formOf([["file", list], ["refresh", "1"]]))),
      400,
    ],
    ["a bad `refresh` query", () => post(svc, list, "text/plain", "/images?refresh=yes"), 400],
    ["only comments", () => post(svc, "# nothing\n\n", "text/plain"), 400],
    ["100,001 URLs", () => post(svc, "https://a.example/x\n".repeat(100_001), "text/plain"), 400],
  ];
  try {
    for (const [name, send, status] of cases) {
      await t.step(`${name} -> ${status}`, async () => {
        await assertProblem(await send(), status);
        const written = [];
        for await (const e of svc.service.kv.list({ prefix: [] })) written.push(e.key);
        assert.deepEqual(written, []);
      });
    }
  } finally {
    await svc.close();
  }
});

Deno.test("list bodies over 20 MiB are refused with 413, declared or streamed", async () => {
  const svc = await startTestService({}, { startWorker: false });
  try {
    const line = new TextEncoder().encode(`https://images.example.com/${"a".repeat(400)}.png\n`);
    const total = 20 * 1024 * 1024 + line.length;
    const declared = new Uint8Array(total);
    for (let at = 0; at + line.length <= total; at += line.length) declared.set(line, at);
    await assertProblem(await post(svc, declared, "text/plain"), 413);

    // No Content-Length: counted as it streams.
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= total) return controller.close();
        const chunk = declared.subarray(sent, Math.min(total, sent + 65_536));
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    await assertProblem(await post(svc, stream, "text/csv"), 413);
    const written = [];
    for await (const e of svc.service.kv.list({ prefix: [] })) written.push(e.key);
    assert.deepEqual(written, []);
  } finally {
    await svc.close();
  }
});

Deno.test("JSON stays strict and keeps its 2 MiB limit", async () => {
  const svc = await startTestService({}, { startWorker: false });
  try {
    const bad = await svc.app.request("/images", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ urls: ["https://images.example.com/a.png", "not a url"] }),
    });
    await assertProblem(bad, 400);
    const big = await svc.app.request("/images", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ urls: [`https://a.example/?${"a".repeat(2 * 1024 * 1024)}`] }),
    });
    await assertProblem(big, 413);
  } finally {
    await svc.close();
  }
});

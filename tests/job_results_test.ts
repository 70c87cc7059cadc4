import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { csvCell } from "../services/jobs/results_file.ts";
import { ulid, urlHash } from "../services/store/ids.ts";
import { keys } from "../services/store/kv_keys.ts";
import { commitInBatches, type Mutation } from "../services/store/kv_bulk.ts";
import type { ItemRecord, JobRecord } from "../services/store/records.ts";
import { startTestService } from "./support/app.ts";
import { assertProblem, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

const RESULT_COLUMNS =
  "url,status,reason,attempts,content_url,sha256,content_type,bytes,width,height";

/** Splits RFC 4180 CSV text (CRLF records, quoted fields) into rows. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') field += text[++i];
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += ch;
  }
  assert.equal(field + row.join(""), "", "the file ends with CRLF");
  return rows;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test("results.csv of a CSV list: its columns first, one row per line in input order, guarded cells", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "0" });
  try {
    const png = await makeImage("png", { width: 6, height: 4 });
    origin.set("/a.png", { body: png });
    origin.set("/gone", { status: 404, body: "no" });
    const a = origin.url("/a.png");
    const gone = origin.url("/gone");
    const csv = [
      "sku,url,note",
      `1,${a},"plain, with comma"`,
      `2,${gone},"=HYPERLINK(""x"")"`,
      "3,not a url,+1",
      `4,${a},"say ""hi"""`,
      "",
    ].join("\n");
    const res = await t.app.request("/images", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: csv,
    });
    assert.equal(res.status, 202, await res.clone().text());
    const { id } = await res.json();
    await waitForJob(t.app, id);

    const out = await t.app.request(`/jobs/${id}/results.csv`);
    assert.equal(out.status, 200);
    assert.equal(out.headers.get("content-type"), "text/csv; charset=utf-8");
    assert.match(out.headers.get("content-disposition")!, /attachment; filename="job-.*\.csv"/);
    const rows = parseCsv(await out.text());
    assert.deepEqual(rows[0], ["sku", "url", "note", ...RESULT_COLUMNS.split(",")]);
    assert.equal(rows.length, 5, "a row per input line, the repeated URL included");
    const content = `/images/content?url=${encodeURIComponent(a)}`;
    const stored = [
      "complete",
      "",
      "1",
      content,
      sha(png),
      "image/png",
      String(png.length),
      "6",
      "4",
    ];
    assert.deepEqual(rows[1], ["1", a, "plain, with comma", a, ...stored]);
    assert.deepEqual(rows[2], [
      "2",
      gone,
      `'=HYPERLINK("x")`,
      gone,
      "failed",
      "http_404",
      "1",
      ...Array(6).fill(""),
    ]);
    assert.deepEqual(rows[3].slice(0, 7), [
      "3",
      "not a url",
      "'+1",
      "not a url",
      "failed",
      "invalid_url",
      "0",
    ]);
    assert.deepEqual(rows[4], ["4", a, 'say "hi"', a, ...stored]);

    const nd = await t.app.request(`/jobs/${id}/results.ndjson`);
    assert.equal(nd.status, 200);
    assert.equal(nd.headers.get("content-type"), "application/x-ndjson");
    const lines = (await nd.text()).trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.line), [2, 3, 4, 5]);
    assert.deepEqual(
      lines[1].columns,
      ["2", gone, '=HYPERLINK("x")'],
      "NDJSON keeps cells as sent",
    );
    assert.equal(lines[0].content_url, content);
    assert.equal(lines[0].bytes, png.length);
    assert.equal(lines[1].sha256, null);
    assert.match(lines[2].detail, /^line 4: /);
    assert.deepEqual(Object.keys(lines[3]), [
      "url",
      "status",
      "reason",
      "detail",
      "attempts",
      "content_url",
      "sha256",
      "content_type",
      "bytes",
      "width",
      "height",
      "line",
      "columns",
    ]);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("results of a JSON list: the result columns only, in submission order", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "0" });
  try {
    const gif = await makeImage("gif", { width: 3, height: 3 });
    origin.set("/z.gif", { body: gif, delayMs: 200 });
    origin.set("/y", { status: 403, body: "no" });
    const urls = [origin.url("/z.gif"), origin.url("/y"), origin.url("/x")];
    const { id } = await submit(t.app, { urls });
    await waitForJob(t.app, id);
    const rows = parseCsv(await (await t.app.request(`/jobs/${id}/results.csv`)).text());
    assert.deepEqual(rows[0], RESULT_COLUMNS.split(","));
    assert.deepEqual(rows.slice(1).map((r) => [r[0], r[1], r[2]]), [
      [urls[0], "complete", ""],
      [urls[1], "failed", "http_403"],
      [urls[2], "failed", "http_404"],
    ]);
    const lines = (await (await t.app.request(`/jobs/${id}/results.ndjson`)).text())
      .trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.url), urls);
    assert.ok(lines.every((l) => !("columns" in l) && !("line" in l)));
    assert.equal(lines[0].sha256, sha(gif));
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("results: 409 with Retry-After while a large list's items are still being written", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const { id } = await submit(t.app, { urls: ["https://images.example.com/a.png"] });
    // What services/intake leaves while it materialises a large list's items.
    const intake = t.service.jobs.keys.jobIntake(id);
    await t.service.kv.set(intake, { next: 0, chunks: 1 });
    for (const path of ["results.csv", "results.ndjson"]) {
      const res = await t.app.request(`/jobs/${id}/${path}`);
      assert.equal(res.headers.get("retry-after"), "1");
      await assertProblem(res, 409);
    }
    await t.service.kv.delete(intake);
    assert.equal((await t.app.request(`/jobs/${id}/results.csv`)).status, 200);
  } finally {
    await t.close();
  }
});

Deno.test("results: an unknown job is a 404 problem", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    for (const path of ["results.csv", "results.ndjson"]) {
      await assertProblem(await t.app.request(`/jobs/01KAQ4Z3T7V6B6XG5N3W2R8M9C/${path}`), 404);
      await assertProblem(await t.app.request(`/jobs/nope/${path}`), 404);
    }
  } finally {
    await t.close();
  }
});

Deno.test("csvCell quotes per RFC 4180 and defuses formula starts", () => {
  assert.equal(csvCell("plain"), "plain");
  assert.equal(csvCell('a"b'), '"a""b"');
  assert.equal(csvCell("a,b"), '"a,b"');
  assert.equal(csvCell("a\nb"), '"a\nb"');
  for (const start of ["=", "+", "-", "@", "\t", "\r"]) {
    assert.equal(csvCell(`${start}1`).replace(/^"/, "")[0], "'", JSON.stringify(start));
  }
  assert.equal(csvCell("=1,2"), `"'=1,2"`);
  assert.equal(csvCell("https://x/-y"), "https://x/-y");
});

const ROWS = 100_000;

Deno.test({
  name: "results: a 100,000-row export starts at once and streams with bounded memory",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "image-ingest-export-" });
    const kvPath = `${dir}/kv.sqlite3`;
    try {
      // Written straight to KV, as a finished job would leave it: POST is not what is tested.
      const kv = await Deno.openKv(kvPath);
      const k = keys();
      const id = ulid();
      const pad = "p".repeat(200);
      const mutations: Mutation[] = [];
      for (let i = 0; i < ROWS; i++) {
        const url = `https://images.example.com/${pad}/${i}.png`;
        const item: ItemRecord = {
          url,
          urlHash: urlHash(url),
          state: "failed",
          attempts: 1,
          reason: "http_404",
          detail: "origin answered 404",
        };
        mutations.push({ type: "set", key: k.item(id, i), value: item, size: 600 });
      }
      await commitInBatches(kv, mutations);
      const now = Date.now();
      const job: JobRecord = {
        id,
        created: now,
        total: ROWS,
        refresh: false,
        started: now,
        finished: now,
        source: "json",
      };
      await kv.set(k.job(id), job);
      kv.close();

      // Its own process, so the heap can be measured after each collection.
      const probe = new URL("./support/export_probe.ts", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--unstable-kv",
          "--v8-flags=--expose-gc",
          "--allow-all",
          probe,
          kvPath,
          id,
          "csv",
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      assert.ok(out.success, "the probe ran");
      const m = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
      const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
      const what = `heap +${mib(m.peak)} MiB for ${mib(m.bytes)} MiB; first bytes after ` +
        `${m.firstByteMs} of ${m.totalMs} ms`;
      assert.equal(m.status, 200);
      assert.equal(m.lines, ROWS + 1, "a header and a row per item");
      assert.ok(m.bytes > 20 * 1024 * 1024, what);
      assert.ok(m.firstByteMs < 1000 && m.firstByteMs * 5 < m.totalMs, what);
      // Held whole, the file would take more heap than its size (JS strings).
      assert.ok(m.peak < 8 * 1024 * 1024, what);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

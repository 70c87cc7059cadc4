import assert from "node:assert/strict";
import { JobWriter } from "../services/intake/job_writer.ts";
import type { ListEntry } from "../services/intake/list_parser.ts";
import { IdempotencyRepo } from "../services/store/idempotency_repo.ts";
import { urlHash } from "../services/store/ids.ts";
import { keys } from "../services/store/kv_keys.ts";
import type { ItemRecord, RepeatRecord } from "../services/store/records.ts";
import { startTestService, type TestService } from "./support/app.ts";
import { waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

async function count(t: TestService, prefix: Deno.KvKey): Promise<number> {
  let n = 0;
  for await (const _ of t.service.kv.list({ prefix })) n++;
  return n;
}

Deno.test("a 100,000-URL text body is accepted, then its items are written in order", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      lines.push(
        i === 5
          ? "not a url"
          : i === 7
          ? "https://img.example.com/0.png"
          : `https://img.example.com/${i}.png`,
      );
    }
    const res = await t.app.request("/images", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: lines.join("\n"),
    });
    const text = await res.text();
    assert.equal(res.status, 202, text);
    const job = JSON.parse(text);
    // Line 8 repeats line 1: one item fewer.
    assert.equal(job.total, 99_999);
    assert.deepEqual(job.counts, { pending: 99_998, complete: 0, failed: 1 });

    await t.service.intake.materialise(job.id);
    const k = keys();
    assert.equal(await count(t, k.itemsOf(job.id)), 99_999);
    assert.equal(await count(t, k.itemsByState(job.id, "pending")), 99_998);
    assert.equal(await count(t, k.jobIntakeChunksOf(job.id)), 0);
    assert.equal((await t.service.kv.get(k.jobIntake(job.id))).versionstamp, null);
    const [first, bad, last] = await t.service.jobs.getItems(job.id, [0, 5, 99_998]);
    assert.deepEqual([first!.url, first!.line], ["https://img.example.com/0.png", 1]);
    assert.deepEqual([bad!.state, bad!.detail], ["failed", "line 6: not an absolute URL"]);
    assert.deepEqual([last!.url, last!.line], ["https://img.example.com/99999.png", 100_000]);
    const repeat = await t.service.kv.get<RepeatRecord>(k.jobRepeat(job.id, 8));
    assert.deepEqual(repeat.value, { index: 0 });
  } finally {
    await t.close();
  }
});

Deno.test("a list committed as chunks is materialised once, even by racing materialisers, and then downloaded", async () => {
  const origin = startImageOrigin();
  const png = await makeImage("png", { width: 4, height: 4, seed: 9 });
  for (let i = 0; i < 6; i++) origin.set(`/${i}.png`, { body: png });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule }, {
    startWorker: false,
  });
  try {
    // One URL stored beforehand: it becomes complete when materialised.
    const k = keys();
    const stored = origin.url("/0.png");
    await t.service.images.put({
      url: stored,
      sha256: "0".repeat(64),
      bytes: png.length,
      format: "png",
      contentType: "image/png",
      width: 4,
      height: 4,
      storedAt: Date.now(),
    }, urlHash(stored));

    // A writer that takes the chunked path for anything over 2 entries.
    const writer = new JobWriter(
      t.service.kv,
      k,
      t.service.images,
      new IdempotencyRepo(t.service.kv, k),
      false,
      2,
    );
    const entries: ListEntry[] = [
      { url: origin.url("/0.png"), line: 2, columns: ["a", origin.url("/0.png")] },
      { url: "nope", line: 3, columns: ["b", "nope"], invalid: "line 3: not an absolute URL" },
      ...[1, 2, 3, 4, 5].map((i) => ({
        url: origin.url(`/${i}.png`),
        line: 3 + i,
        columns: [`r${i}`, origin.url(`/${i}.png`)],
      })),
    ];
    const out = await writer.create({
      entries,
      repeats: [{ line: 10, index: 2, columns: ["again", origin.url("/1.png")] }],
      refresh: false,
      source: "csv",
      csvHeader: ["name", "url"],
    });
    assert.ok(out.created);
    const id = out.snapshot.job.id;
    assert.deepEqual(out.snapshot.counts, { pending: 6, complete: 0, failed: 1 });
    assert.equal(await count(t, k.itemsOf(id)), 0, "no items before materialising");
    assert.ok((await count(t, k.jobIntakeChunksOf(id))) >= 1);

    await Promise.all([writer.materialise(id), writer.materialise(id), writer.materialise(id)]);
    const snap = await t.service.jobs.get(id);
    assert.deepEqual(snap!.counts, { pending: 5, complete: 1, failed: 1 });
    const items = await t.service.jobs.getItems(id, [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(
      items.map((i: ItemRecord | null) => [i!.state, i!.line, i!.columns?.[0]]),
      [
        ["complete", 2, "a"],
        ["failed", 3, "b"],
        ["pending", 4, "r1"],
        ["pending", 5, "r2"],
        ["pending", 6, "r3"],
        ["pending", 7, "r4"],
        ["pending", 8, "r5"],
      ],
    );
    assert.deepEqual((await t.service.kv.get(k.jobRepeat(id, 10))).value, {
      index: 2,
      columns: ["again", origin.url("/1.png")],
    });

    // The worker (any pump) finishes what is left.
    const fresh = await startWorkerOn(t, id);
    assert.deepEqual(fresh.counts, { pending: 0, complete: 6, failed: 1 });
    const done = await t.service.jobs.getItems(id, [2]);
    assert.deepEqual([done[0]!.line, done[0]!.columns?.[0]], [4, "r1"], "kept when finished");
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("the worker materialises a chunked list before its first pass", async () => {
  const origin = startImageOrigin();
  const png = await makeImage("png", { width: 4, height: 4, seed: 11 });
  for (let i = 0; i < 4; i++) origin.set(`/${i}.png`, { body: png });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule }, {
    startWorker: false,
  });
  try {
    const k = keys();
    const writer = new JobWriter(
      t.service.kv,
      k,
      t.service.images,
      new IdempotencyRepo(t.service.kv, k),
      false,
      1,
    );
    const out = await writer.create({
      entries: [0, 1, 2, 3].map((i) => ({ url: origin.url(`/${i}.png`), line: i + 1 })),
      repeats: [],
      refresh: false,
      source: "text",
    });
    assert.ok(out.created);
    // Nobody nudged the worker: the sweep finds the active job and its pump writes the items.
    const job = await startWorkerOn(t, out.snapshot.job.id);
    assert.deepEqual(job.counts, { pending: 0, complete: 4, failed: 0 });
  } finally {
    await t.close();
    await origin.close();
  }
});

async function startWorkerOn(t: TestService, jobId: string) {
  t.service.worker.start();
  return await waitForJob(t.app, jobId);
}

Deno.test("chunks of rows outside Latin-1 are split to fit KV's value limit", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const k = keys();
    const writer = new JobWriter(
      t.service.kv,
      k,
      t.service.images,
      new IdempotencyRepo(t.service.kv, k),
      false,
      2,
    );
    const note = "画像".repeat(500);
    const entries: ListEntry[] = Array.from({ length: 60 }, (_, i) => ({
      url: `https://img.example.com/${i}.png`,
      line: i + 2,
      columns: [`https://img.example.com/${i}.png`, note],
    }));
    const out = await writer.create({ entries, repeats: [], refresh: false, source: "csv" });
    assert.ok(out.created);
    await writer.materialise(out.snapshot.job.id);
    const items = await t.service.jobs.getItems(out.snapshot.job.id, [0, 59]);
    assert.deepEqual(items.map((i) => [i!.line, i!.columns![1] === note]), [[2, true], [61, true]]);
    assert.equal(await count(t, k.itemsOf(out.snapshot.job.id)), 60);
  } finally {
    await t.close();
  }
});

import assert from "node:assert/strict";
import { startTestService, type TestService } from "./support/app.ts";
import { allItems, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import { keys } from "../services/store/kv_keys.ts";

Deno.test("transient failures are retried: 500 twice then 200 is stored on the third attempt", async () => {
  const png = await makeImage("png", { width: 6, height: 6, seed: 1 });
  let calls = 0;
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    calls++;
    return calls <= 2
      ? new Response("busy", { status: 500 })
      : new Response(png as Uint8Array<ArrayBuffer>);
  });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: `127.0.0.1:${origin.addr.port}` });
  try {
    const url = `http://127.0.0.1:${origin.addr.port}/flaky.png`;
    const job = await submit(t.app, { urls: [url] });
    const done = await waitForJob(t.app, job.id);
    assert.deepEqual(done.counts, { pending: 0, complete: 1, failed: 0 });
    const [item] = await allItems(t.app, job.id);
    assert.equal(item.attempts, 3);
    assert.equal(calls, 3);
  } finally {
    await t.close();
    await origin.shutdown();
  }
});

Deno.test("429 with Retry-After is honoured; a 404 fails at once after one attempt", async () => {
  const png = await makeImage("png", { width: 6, height: 6, seed: 2 });
  const seen: number[] = [];
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (new URL(req.url).pathname === "/gone.png") return new Response("no", { status: 404 });
    seen.push(Date.now());
    return seen.length === 1
      ? new Response("slow down", { status: 429, headers: { "retry-after": "1" } })
      : new Response(png as Uint8Array<ArrayBuffer>);
  });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: `127.0.0.1:${origin.addr.port}` });
  try {
    const base = `http://127.0.0.1:${origin.addr.port}`;
    const job = await submit(t.app, { urls: [`${base}/limited.png`, `${base}/gone.png`] });
    await waitForJob(t.app, job.id);
    const [limited, gone] = await allItems(t.app, job.id);
    assert.equal(limited.state, "complete");
    assert.equal(limited.attempts, 2);
    assert.ok(seen[1] - seen[0] >= 950, `waited ${seen[1] - seen[0]} ms for Retry-After: 1`);
    assert.equal(gone.state, "failed");
    assert.equal(gone.reason, "http_404");
    assert.equal(gone.attempts, 1);
  } finally {
    await t.close();
    await origin.shutdown();
  }
});

Deno.test("retries stop after FETCH_RETRIES and the item keeps the last reason", async () => {
  let calls = 0;
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    calls++;
    return new Response("down", { status: 503 });
  });
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: `127.0.0.1:${origin.addr.port}`,
    FETCH_RETRIES: "2",
  });
  try {
    const job = await submit(t.app, { urls: [`http://127.0.0.1:${origin.addr.port}/x.png`] });
    await waitForJob(t.app, job.id);
    const [item] = await allItems(t.app, job.id);
    assert.equal(item.state, "failed");
    assert.equal(item.reason, "http_503");
    assert.equal(item.attempts, 3);
    assert.equal(calls, 3);
  } finally {
    await t.close();
    await origin.shutdown();
  }
});

/** One job: `slowCount` URLs on a slow origin first, then `fastCount` on a fast one. */
interface SlowThenFast {
  slowCount: number;
  fastCount: number;
  delayMs: number;
  concurrency: number;
  perHost: number;
  seed: number;
}

/**
 * Runs a {@link SlowThenFast} job until every fast URL is stored and returns
 * how many slow downloads had started by then; `then` runs before clean-up.
 */
async function slowHitsWhenFastDone(
  o: SlowThenFast,
  then: (t: TestService, jobId: string) => Promise<void> = async () => {},
): Promise<number> {
  const slow = startImageOrigin();
  const fast = startImageOrigin();
  const png = await makeImage("png", { width: 4, height: 4, seed: o.seed });
  const urls: string[] = [];
  for (let i = 0; i < o.slowCount; i++) {
    slow.set(`/s${i}.png`, { body: png, delayMs: o.delayMs });
    urls.push(slow.url(`/s${i}.png`));
  }
  for (let i = 0; i < o.fastCount; i++) {
    fast.set(`/f${i}.png`, { body: png });
    urls.push(fast.url(`/f${i}.png`));
  }
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: `${slow.allowRule},${fast.allowRule}`,
    WORKER_CONCURRENCY: String(o.concurrency),
    PER_HOST_CONCURRENCY: String(o.perHost),
  });
  try {
    const job = await submit(t.app, { urls });
    for (;;) {
      const fastDone = (await allItems(t.app, job.id, "state=complete"))
        .filter((i) => i.url.startsWith(fast.base)).length;
      if (fastDone === o.fastCount) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const slowHits = slow.totalHits();
    await then(t, job.id);
    return slowHits;
  } finally {
    await t.close();
    await slow.close();
    await fast.close();
  }
}

Deno.test("one slow host does not hold back another host's images", async () => {
  const slowHits = await slowHitsWhenFastDone(
    { slowCount: 50, fastCount: 50, delayMs: 200, concurrency: 8, perHost: 4, seed: 3 },
    (t, jobId) => waitForJob(t.app, jobId, 30_000),
  );
  // When the fast host is done, the slow one (4 at a time, 200 ms each) is far from it.
  assert.ok(slowHits < 40, `slow host served ${slowHits} before fast finished`);
});

Deno.test("without a queue (remote KV) the sweep alone drives the work", async () => {
  const origin = startImageOrigin({
    "/q.png": { body: await makeImage("png", { width: 2, height: 2 }) },
  });
  const t = await startTestService(
    { FETCH_ALLOW_HOSTS: origin.allowRule },
    { withoutQueue: true, notifyWorker: false },
  );
  try {
    const job = await submit(t.app, { urls: [origin.url("/q.png")] });
    const done = await waitForJob(t.app, job.id);
    assert.equal(done.counts.complete, 1);
    assert.equal(origin.hits("/q.png"), 1);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("an item claimed by a worker that died is resumed once its lease expires", async () => {
  const origin = startImageOrigin({
    "/z.png": { body: await makeImage("png", { width: 2, height: 2 }) },
  });
  const t = await startTestService(
    { FETCH_ALLOW_HOSTS: origin.allowRule, LEASE_MS: "1000" },
    { startWorker: false },
  );
  try {
    const job = await submit(t.app, { urls: [origin.url("/z.png")] });
    // A claim by a process that then vanished.
    const claim = await t.service.jobs.claim(job.id, 0, "dead-worker", 1000);
    assert.ok(claim);
    t.service.worker.start();
    t.service.worker.notify(job.id);
    t.service.worker.notify(job.id); // duplicate nudges are harmless
    const done = await waitForJob(t.app, job.id);
    assert.equal(done.counts.complete, 1);
    assert.equal(origin.hits("/z.png"), 1);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("items of a job whose POST died mid-way are collected; finished jobs leave no marker", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const { kv, jobs } = t.service;
    const k = keys();
    // A finished POST: no creation marker left behind.
    const job = await submit(t.app, { urls: ["https://images.example.com/a.png"] });
    const markers = [];
    for await (const e of kv.list({ prefix: k.creatingJobs() })) markers.push(e);
    assert.deepEqual(markers, []);

    // A POST that died after writing items but before its final commit.
    const ghost = "01KAQ4Z3T7V6B6XG5N3W2R8M9C";
    await kv.set(k.creatingJob(ghost), Date.now() - 60_000);
    await kv.set(k.item(ghost, 0), { url: "https://x.example/1.png" });
    await kv.set(k.itemByState(ghost, "pending", 0), null);
    assert.equal(await jobs.collectAbandoned(120_000), 0, "too young to collect");
    assert.equal(await jobs.collectAbandoned(30_000), 1);
    const left = [];
    for await (const e of kv.list({ prefix: [k.item(ghost, 0)[0]] })) {
      if (e.key.includes(ghost)) left.push(e.key);
    }
    assert.deepEqual(left, []);
    // The real job is untouched.
    assert.equal((await t.app.request(`/jobs/${job.id}`)).status, 200);
  } finally {
    await t.close();
  }
});

Deno.test("a blob that cannot be written fails as storage_error after its retries, not a stuck lease", async () => {
  const origin = startImageOrigin({
    "/w.png": { body: await makeImage("png", { width: 3, height: 3, seed: 9 }) },
  });
  const t = await startTestService(
    { FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "1" },
    { startWorker: false },
  );
  try {
    // Let the store make its directories, then make its temporary area unusable.
    await (await t.service.blobs.stage(ReadableStream.from([new Uint8Array(1)]))).discard();
    await Deno.remove(`${t.dataDir}/tmp`, { recursive: true });
    await Deno.writeTextFile(`${t.dataDir}/tmp`, ""); // a file: no temporary file can be made
    t.service.worker.start();
    const job = await submit(t.app, { urls: [origin.url("/w.png")] });
    const done = await waitForJob(t.app, job.id);
    assert.deepEqual(done.counts, { pending: 0, complete: 0, failed: 1 });
    const [item] = await allItems(t.app, job.id);
    assert.equal(item.reason, "storage_error");
    assert.equal(item.attempts, 2);
    assert.equal(origin.hits("/w.png"), 2);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("on shutdown, items claimed ahead of a download slot are handed back untouched", async () => {
  const png = await makeImage("png", { width: 2, height: 2, seed: 4 });
  const paths = ["/s0.png", "/s1.png", "/s2.png", "/s3.png", "/s4.png"];
  const origin = startImageOrigin(
    Object.fromEntries(paths.map((p) => [p, { body: png, delayMs: 400 }])),
  );
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: origin.allowRule,
    WORKER_CONCURRENCY: "1",
  });
  try {
    const job = await submit(t.app, { urls: paths.map((p) => origin.url(p)) });
    // One download runs; the other items are claimed and wait for its slot.
    while (origin.totalHits() === 0) await new Promise((r) => setTimeout(r, 10));
    const claimed = async () => {
      let n = 0;
      for (let i = 0; i < paths.length; i++) {
        if ((await t.service.jobs.itemEntry(job.id, i)).value?.leaseOwner) n++;
      }
      return n;
    };
    // (Up to two per slot are taken ahead.)
    while (await claimed() < 3) await new Promise((r) => setTimeout(r, 10));
    await t.service.worker.stop(0);
    const k = keys();
    for (let i = 0; i < paths.length; i++) {
      const item = (await t.service.jobs.itemEntry(job.id, i)).value!;
      assert.equal(item.state, "pending", `item ${i}`);
      assert.equal(item.leaseOwner, undefined, `item ${i} keeps no lease`);
      assert.equal(item.attempts, 0, `item ${i} used no attempt`);
      const lease = await t.service.kv.get(k.urlLease(item.urlHash));
      assert.equal(lease.value, null, `URL ${i} keeps no lease`);
    }
    assert.equal(origin.totalHits(), 1, "no download started after the stop");
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("a long backlog on one slow host does not hold back other hosts' images", async () => {
  // Far more slow URLs than the worker takes up ahead (4 per slot), all first.
  const slowHits = await slowHitsWhenFastDone(
    { slowCount: 300, fastCount: 10, delayMs: 300, concurrency: 4, perHost: 2, seed: 5 },
  );
  // Two at a time, 300 ms each: the slow host is far from done.
  assert.ok(slowHits < 20, `slow host served ${slowHits} before fast finished`);
});

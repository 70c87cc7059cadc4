import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";
import { allItems, assertProblem, submit } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

type Requester = { request(input: string, init?: RequestInit): Response | Promise<Response> };

/** Polls a job until `done(job)` holds. */
async function waitFor(app: Requester, id: string, done: (job: any) => boolean, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await (await app.request(`/jobs/${id}`)).json();
    if (done(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} never got there: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ended = (job: { finished: string | null }) => job.finished !== null;

/** A body that sends its first bytes at once and the rest when `release()` is called. */
function heldBody(bytes: Uint8Array) {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const stream = () =>
    new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(bytes.slice(0, 16));
        await released;
        controller.enqueue(bytes.slice(16));
        controller.close();
      },
    });
  return { stream, release };
}

Deno.test("retry queues failed URLs again once the origin is fixed; attempts continue", async () => {
  const png = await makeImage("png", { width: 5, height: 5, seed: 31 });
  const origin = startImageOrigin({
    "/a.png": { status: 404, body: "not yet" },
    "/b.png": { body: png },
  });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule });
  try {
    const job = await submit(t.app, { urls: [origin.url("/a.png"), origin.url("/b.png")] });
    const first = await waitFor(t.app, job.id, ended);
    assert.equal(first.status, "complete");
    assert.deepEqual(first.counts, { pending: 0, complete: 1, failed: 1 });
    assert.equal(origin.hits("/a.png"), 1);

    origin.set("/a.png", { body: png });
    const res = await t.app.request(`/jobs/${job.id}/retry`, { method: "POST" });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get("content-type"), "application/json");
    const retried = await res.json();
    assert.equal(retried.finished, null);
    assert.notEqual(retried.status, "complete");

    const done = await waitFor(t.app, job.id, ended);
    assert.equal(done.status, "complete");
    assert.deepEqual(done.counts, { pending: 0, complete: 2, failed: 0 });
    const [a, b] = await allItems(t.app, job.id);
    assert.equal(a.state, "complete");
    assert.equal(a.attempts, 2, "the attempt count continues");
    assert.equal(a.reason, undefined);
    assert.equal(b.attempts, 1, "complete URLs are not fetched again");
    assert.equal(origin.hits("/a.png"), 2);
    assert.equal(origin.hits("/b.png"), 1);

    // Nothing failed now: a retry changes nothing and says so with the job as it is.
    const again = await t.app.request(`/jobs/${job.id}/retry`, { method: "POST" });
    assert.equal(again.status, 202);
    assert.equal((await again.json()).status, "complete");
    assert.equal(origin.totalHits(), 3);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("retry is 409 while the job runs and 404 for an unknown job", async () => {
  const png = await makeImage("png", { width: 5, height: 5, seed: 32 });
  const held = heldBody(png);
  const origin = startImageOrigin({ "/slow.png": { respond: () => new Response(held.stream()) } });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule });
  try {
    const job = await submit(t.app, { urls: [origin.url("/slow.png")] });
    while (origin.hits("/slow.png") === 0) await new Promise((r) => setTimeout(r, 10));
    const busy = await assertProblem(
      await t.app.request(`/jobs/${job.id}/retry`, { method: "POST" }),
      409,
    );
    assert.match(busy.detail, /still running/);
    held.release();
    await waitFor(t.app, job.id, ended);

    await assertProblem(
      await t.app.request("/jobs/01KAQ4Z3T7V6B6XG5N3W2R8M9C/retry", { method: "POST" }),
      404,
    );
    await assertProblem(await t.app.request("/jobs/nope/retry", { method: "POST" }), 404);
    await assertProblem(
      await t.app.request("/jobs/01KAQ4Z3T7V6B6XG5N3W2R8M9C", { method: "DELETE" }),
      404,
    );
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("cancel: URLs not started are never downloaded, the one in flight finishes", async () => {
  const png = await makeImage("png", { width: 5, height: 5, seed: 33 });
  const held = heldBody(png);
  // Every answer is held until release: whichever download starts first (items are claimed
  // ahead and need not start in list order) stays in flight, the rest wait behind it.
  const routes: Record<string, { body?: Uint8Array; respond?: () => Response }> = {};
  for (let i = 0; i < 20; i++) routes[`/${i}.png`] = { respond: () => new Response(held.stream()) };
  const origin = startImageOrigin(routes);
  // One download at a time.
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: origin.allowRule,
    WORKER_CONCURRENCY: "1",
    PER_HOST_CONCURRENCY: "1",
  });
  try {
    const urls = Array.from({ length: 20 }, (_, i) => origin.url(`/${i}.png`));
    const job = await submit(t.app, { urls });
    while (origin.totalHits() === 0) await new Promise((r) => setTimeout(r, 10));
    const first = urls.findIndex((_, i) => origin.hits(`/${i}.png`) > 0);

    const res = await t.app.request(`/jobs/${job.id}`, { method: "DELETE" });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get("content-type"), "application/json");
    const cancelled = await res.json();
    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.finished, null, "a download is still in flight");

    held.release();
    const done = await waitFor(t.app, job.id, ended);
    assert.equal(done.status, "cancelled");
    assert.deepEqual(done.counts, { pending: 0, complete: 1, failed: 19 });
    assert.equal(origin.totalHits(), 1, "nothing after the cancel was requested");

    const items = await allItems(t.app, job.id);
    assert.equal(items[first].state, "complete");
    for (const item of items.filter((_, i) => i !== first)) {
      assert.equal(item.state, "failed");
      assert.equal(item.reason, "cancelled");
      assert.equal(item.attempts, 0);
    }

    // Repeating the cancel returns the same cancelled job.
    const again = await t.app.request(`/jobs/${job.id}`, { method: "DELETE" });
    assert.equal(again.status, 202);
    const repeat = await again.json();
    assert.deepEqual([repeat.status, repeat.finished, repeat.counts], [
      done.status,
      done.finished,
      done.counts,
    ]);
    assert.equal(origin.totalHits(), 1);

    // A retry resumes it: the cancelled URLs are downloaded after all.
    const resumed = await t.app.request(`/jobs/${job.id}/retry`, { method: "POST" });
    assert.equal(resumed.status, 202);
    const finished = await waitFor(t.app, job.id, ended);
    assert.equal(finished.status, "complete");
    assert.deepEqual(finished.counts, { pending: 0, complete: 20, failed: 0 });
    assert.equal(origin.totalHits(), 20);
  } finally {
    held.release();
    await t.close();
    await origin.close();
  }
});

Deno.test("cancel of a job that already ended is 409 and changes nothing", async () => {
  const png = await makeImage("png", { width: 5, height: 5, seed: 34 });
  const origin = startImageOrigin({ "/a.png": { body: png } });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule });
  try {
    const job = await submit(t.app, { urls: [origin.url("/a.png")] });
    const done = await waitFor(t.app, job.id, ended);
    const p = await assertProblem(
      await t.app.request(`/jobs/${job.id}`, { method: "DELETE" }),
      409,
    );
    assert.match(p.detail, /already ended/);
    assert.deepEqual(await (await t.app.request(`/jobs/${job.id}`)).json(), done);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("a cancel recorded by another instance stops this one's worker", async () => {
  const png = await makeImage("png", { width: 5, height: 5, seed: 35 });
  const routes: Record<string, { body: Uint8Array; delayMs: number }> = {};
  for (let i = 0; i < 30; i++) routes[`/${i}.png`] = { body: png, delayMs: 50 };
  const origin = startImageOrigin(routes);
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: origin.allowRule,
    WORKER_CONCURRENCY: "1",
    PER_HOST_CONCURRENCY: "1",
  }, { notifyWorker: false });
  try {
    const urls = Array.from({ length: 30 }, (_, i) => origin.url(`/${i}.png`));
    const job = await submit(t.app, { urls });
    // The queue message starts this process's worker; wait for it to be busy.
    while (origin.totalHits() < 2) await new Promise((r) => setTimeout(r, 10));
    // The cancel goes straight to KV, as another instance's DELETE would:
    // nothing tells this process's worker but the job's KV state.
    const { JobActions } = await import("../services/job_ops/job_actions.ts");
    const other = new JobActions(t.service.jobs, { useQueue: false });
    const result = await other.cancel(job.id);
    assert.equal(result.kind, "cancelled");
    const hitsAtCancel = origin.totalHits();
    const done = await waitFor(t.app, job.id, ended);
    assert.equal(done.status, "cancelled");
    // At most the downloads this worker had claimed ahead of its next look at the job.
    assert.ok(origin.totalHits() <= hitsAtCancel + 5, `${origin.totalHits()} requests`);
    assert.ok(done.counts.failed >= 20, JSON.stringify(done.counts));
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("retry leaves URLs that failed as invalid_url at submission failed, untouched", async () => {
  const png = await makeImage("png", { width: 5, height: 5, seed: 36 });
  const origin = startImageOrigin({ "/a.png": { status: 503, body: "down" } });
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "0" });
  try {
    const res = await t.app.request("/images", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: `not a url\n${origin.url("/a.png")}\n`,
    });
    assert.equal(res.status, 202, await res.clone().text());
    const job = await res.json();
    const first = await waitFor(t.app, job.id, ended);
    assert.deepEqual(first.counts, { pending: 0, complete: 0, failed: 2 });

    origin.set("/a.png", { body: png });
    assert.equal((await t.app.request(`/jobs/${job.id}/retry`, { method: "POST" })).status, 202);
    const done = await waitFor(t.app, job.id, ended);
    assert.deepEqual(done.counts, { pending: 0, complete: 1, failed: 1 });
    const items = await allItems(t.app, job.id);
    const invalid = items.find((i) => i.reason === "invalid_url");
    assert.ok(invalid, JSON.stringify(items));
    assert.equal(invalid.state, "failed");
    assert.equal(invalid.attempts, 0);
    const fixed = items.find((i) => i.url === origin.url("/a.png"));
    assert.equal(fixed?.state, "complete");
    assert.equal(fixed?.attempts, 2);

    // Only the invalid line is left failed: nothing to retry, the job comes back unchanged.
    const again = await t.app.request(`/jobs/${job.id}/retry`, { method: "POST" });
    assert.equal(again.status, 202);
    assert.equal((await again.json()).finished, done.finished);
    assert.equal(origin.hits("/a.png"), 2);
  } finally {
    await t.close();
    await origin.close();
  }
});

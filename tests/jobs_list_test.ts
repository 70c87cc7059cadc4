import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";
import { assertProblem, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

// No worker runs in tests that use these: nothing is ever fetched from them.
const unfetched = (job: number, n: number) =>
  Array.from({ length: n }, (_, i) => `https://images.example.com/job${job}/${i}.png`);

Deno.test("GET /jobs lists jobs newest first, in pages, with their summaries", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const ids: string[] = [];
    for (let j = 0; j < 5; j++) ids.push((await submit(t.app, { urls: unfetched(j, j + 1) })).id);
    const newestFirst = [...ids].reverse();

    const seen: { id: string; status: string; total: number; counts: unknown }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await t.app.request(`/jobs?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /application\/json/);
      const page = await res.json();
      assert.ok(page.items.length <= 2);
      seen.push(...page.items);
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen.map((j) => j.id), newestFirst);
    const oldest = seen.at(-1)!;
    assert.equal(oldest.status, "pending");
    assert.equal(oldest.total, 1);
    assert.deepEqual(oldest.counts, { pending: 1, complete: 0, failed: 0 });
    assert.equal(seen[0].total, 5);

    // A job submitted while paging lands on the first page, never repeats on a later one.
    const first = await (await t.app.request("/jobs?limit=2")).json();
    const late = await submit(t.app, { urls: unfetched(9, 1) });
    const second = await (await t.app.request(`/jobs?limit=2&cursor=${first.nextCursor}`)).json();
    assert.deepEqual(second.items.map((j: { id: string }) => j.id), newestFirst.slice(2, 4));
    const all = await (await t.app.request("/jobs")).json();
    assert.equal(all.items[0].id, late.id);
    assert.equal(all.items.length, 6);
    assert.equal(all.nextCursor, null);
  } finally {
    await t.close();
  }
});

Deno.test("GET /jobs refuses bad paging parameters with a problem and no change", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    for (const qs of ["limit=0", "limit=1001", "limit=abc", "cursor=%%%", "cursor=MTIz"]) {
      const body = await assertProblem(await t.app.request(`/jobs?${qs}`), 400);
      assert.ok(body.errors?.length, qs);
    }
    const empty = await (await t.app.request("/jobs")).json();
    assert.deepEqual(empty, { items: [], nextCursor: null });
  } finally {
    await t.close();
  }
});

Deno.test("GET /jobs/{id} lists a small job's URLs as pending, complete and failed", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "0" });
  try {
    origin.set("/a.png", { body: await makeImage("png", { width: 3, height: 2 }) });
    origin.set("/b.gif", { body: await makeImage("gif", { width: 2, height: 2 }) });
    origin.set("/gone.png", { status: 404, body: "no" });
    const urls = [origin.url("/a.png"), origin.url("/gone.png"), origin.url("/b.gif")];
    const { id } = await submit(t.app, { urls });
    await waitForJob(t.app, id);
    const res = await t.app.request(`/jobs/${id}`);
    assert.equal(res.status, 200);
    const job = await res.json();
    assert.equal(job.status, "complete");
    assert.deepEqual(job.counts, { pending: 0, complete: 2, failed: 1 });
    assert.deepEqual(job.pending, []);
    assert.deepEqual(job.complete, [urls[0], urls[2]]);
    assert.equal(job.failed.length, 1);
    assert.equal(job.failed[0].url, urls[1]);
    assert.equal(job.failed[0].reason, "http_404");
    assert.equal(typeof job.failed[0].detail, "string");
    assert.deepEqual(Object.keys(job.failed[0]).sort(), ["detail", "reason", "url"]);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("GET /jobs/{id}: pending URLs are listed; a job over 1,000 URLs has counts only", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const small = await submit(t.app, { urls: unfetched(1, 1000) });
    const job = await (await t.app.request(`/jobs/${small.id}`)).json();
    assert.equal(job.pending.length, 1000);
    assert.equal(job.pending[999], unfetched(1, 1000)[999]);
    assert.deepEqual([job.complete, job.failed], [[], []]);

    const large = await submit(t.app, { urls: unfetched(2, 1001) });
    const big = await (await t.app.request(`/jobs/${large.id}`)).json();
    assert.equal(big.total, 1001);
    assert.deepEqual(big.counts, { pending: 1001, complete: 0, failed: 0 });
    for (const list of ["pending", "complete", "failed"]) assert.ok(!(list in big), list);
  } finally {
    await t.close();
  }
});

Deno.test("the contract declares the event stream and results media types", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const doc = await (await t.app.request("/openapi.json")).json();
    const ok = (path: string) => Object.keys(doc.paths[path].get.responses["200"].content);
    assert.deepEqual(ok("/jobs/{id}/events"), ["text/event-stream"]);
    assert.deepEqual(ok("/jobs/{id}/results.csv"), ["text/csv"]);
    assert.deepEqual(ok("/jobs/{id}/results.ndjson"), ["application/x-ndjson"]);
    const events = doc.paths["/jobs/{id}/events"].get;
    assert.ok(events.parameters.some((p: { name: string }) => p.name === "last-event-id"));
    assert.ok(events.responses["204"]);
    assert.ok(doc.components.schemas.JobDetail.allOf[1].properties.failed);
  } finally {
    await t.close();
  }
});

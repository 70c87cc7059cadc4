import assert from "node:assert/strict";
import { deleteExpiredJobs } from "../services/job_ops/expiry.ts";
import { parseConfig } from "../services/config.ts";
import { startTestService } from "./support/app.ts";
import { assertProblem, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

/** Every KV key that names the job, whatever its prefix. */
async function keysOf(kv: Deno.Kv, jobId: string): Promise<Deno.KvKey[]> {
  const found: Deno.KvKey[] = [];
  for await (const e of kv.list({ prefix: [] })) {
    if (e.key.includes(jobId)) found.push(e.key);
  }
  return found;
}

Deno.test("JOB_TTL_HOURS takes fractional hours and refuses zero or less", () => {
  assert.equal(parseConfig({}).jobTtlMs, 168 * 3_600_000);
  assert.equal(parseConfig({ JOB_TTL_HOURS: "0.001" }).jobTtlMs, 3_600);
  assert.throws(() => parseConfig({ JOB_TTL_HOURS: "0" }), /JOB_TTL_HOURS/);
  assert.throws(() => parseConfig({ JOB_TTL_HOURS: "soon" }), /JOB_TTL_HOURS/);
});

Deno.test("a job and everything under it expire after JOB_TTL_HOURS; the stored image stays", async () => {
  const png = await makeImage("png", { width: 4, height: 4, seed: 51 });
  const origin = startImageOrigin({ "/a.png": { body: png } });
  // 0.0004 h = 1.44 s; the sweep runs every 200 ms in tests.
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: origin.allowRule,
    JOB_TTL_HOURS: "0.0004",
  });
  try {
    const url = origin.url("/a.png");
    const job = await submit(t.app, { urls: [url, origin.url("/missing.png")] });
    await waitForJob(t.app, job.id);
    assert.ok((await keysOf(t.service.kv, job.id)).length >= 6, "items, index, counters, job");

    const deadline = Date.now() + 10_000;
    while ((await t.app.request(`/jobs/${job.id}`)).status !== 404) {
      assert.ok(Date.now() < deadline, "the job never expired");
      await new Promise((r) => setTimeout(r, 50));
    }
    await assertProblem(await t.app.request(`/jobs/${job.id}`), 404);
    await assertProblem(await t.app.request(`/jobs/${job.id}/items`), 404);
    // The sweep deletes the rest at once (KV's own expiry runs about once a minute).
    while ((await keysOf(t.service.kv, job.id)).length > 0) {
      assert.ok(
        Date.now() < deadline,
        `left: ${JSON.stringify(await keysOf(t.service.kv, job.id))}`,
      );
      await new Promise((r) => setTimeout(r, 50));
    }
    const content = await t.app.request(`/images/content?url=${encodeURIComponent(url)}`);
    assert.equal(content.status, 200);
    assert.deepEqual(new Uint8Array(await content.arrayBuffer()), png);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("the expiry sweep stops at the first job still within its TTL", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const png = await makeImage("png", { width: 4, height: 4, seed: 52 });
    const origin = startImageOrigin({ "/a.png": { body: png } });
    try {
      const older = await submit(t.app, { urls: [origin.url("/a.png")] });
      await new Promise((r) => setTimeout(r, 30));
      const newer = await submit(t.app, { urls: [origin.url("/a.png")] });
      const ttl = 60_000;
      const olderJob = (await t.service.jobs.getJob(older.id))!;
      const newerJob = (await t.service.jobs.getJob(newer.id))!;
      assert.ok(newerJob.created > olderJob.created);
      assert.equal(await deleteExpiredJobs(t.service.jobs, ttl, olderJob.created + ttl - 1), 0);
      // The older job's expiry has come, not the newer one's.
      assert.equal(await deleteExpiredJobs(t.service.jobs, ttl, olderJob.created + ttl), 1);
      assert.equal(await t.service.jobs.getJob(older.id), null);
      assert.notEqual(await t.service.jobs.getJob(newer.id), null);
    } finally {
      await origin.close();
    }
  } finally {
    await t.close();
  }
});

Deno.test("a job's keys carry its expiry from submission, and every worker write keeps it (a set without expireIn would drop it)", async () => {
  const { DatabaseSync } = await import("node:sqlite");
  const png = await makeImage("png", { width: 4, height: 4, seed: 53 });
  const origin = startImageOrigin({ "/a.png": { body: png }, "/b.png": { body: png } });
  const dir = await Deno.makeTempDir({ prefix: "image-ingest-ttl-" });
  const kvPath = `${dir}/kv.sqlite3`;
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, KV_PATH: kvPath }, {
    startWorker: false,
  });
  let jobId = "";
  let expiresAt = 0;
  try {
    const job = await submit(t.app, {
      urls: [origin.url("/a.png"), origin.url("/b.png"), origin.url("/missing.png")],
    });
    jobId = job.id;
    const entry = await t.service.kv.get<{ created: number; expiresAt?: number }>(
      ["default", "jobs", jobId],
    );
    expiresAt = entry.value!.expiresAt!;
    assert.equal(expiresAt, entry.value!.created + t.service.config.jobTtlMs);
    // Before any download: the job, its active marker, three items and three state entries.
    assertExpiries(expirations(kvPath, jobId), expiresAt, 8);
    t.service.worker.start();
    await waitForJob(t.app, jobId);
  } finally {
    await t.close();
    await origin.close();
  }
  try {
    // Done: the active marker is gone.
    assertExpiries(expirations(kvPath, jobId), expiresAt, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  /** Each of the job's KV rows and its expiry, read from the SQLite file itself. */
  function expirations(path: string, id: string) {
    const db = new DatabaseSync(path, { readOnly: true });
    const rows = db.prepare("SELECT k, expiration_ms FROM kv").all() as {
      k: Uint8Array;
      expiration_ms: number;
    }[];
    db.close();
    const text = (k: Uint8Array) => new TextDecoder("latin1").decode(k);
    return rows.filter((r) => text(r.k).includes(id)).map((r) => ({
      key: text(r.k),
      expiration: r.expiration_ms,
    }));
  }

  function assertExpiries(rows: { key: string; expiration: number }[], at: number, n: number) {
    const counters = rows.filter((r) => r.key.includes("job_counts"));
    const rest = rows.filter((r) => !r.key.includes("job_counts"));
    assert.equal(rest.length, n, rest.map((r) => r.key).join(" | "));
    for (const r of rest) {
      assert.ok(Math.abs(r.expiration - at) < 60_000, `${r.key}: ${r.expiration} vs ${at}`);
    }
    // Counters are summed, which keeps no expiry: the sweep deletes them.
    assert.equal(counters.length, 2);
  }
});

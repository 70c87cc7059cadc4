import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { allItems, waitForJob } from "./support/http.ts";
import { startImageOrigin, waitFor } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import { runFsck, spawnService } from "./support/subprocess.ts";

const N = 500;

/** `fetch` against a base URL, shaped like `app.request` for the shared helpers. */
const client = (base: string) => ({
  request: (path: string, init?: RequestInit) => fetch(base + path, init),
});

Deno.test({
  name:
    "a service killed with SIGKILL mid-job resumes on restart: every URL ends stored or failed, storage and index agree",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const origin = startImageOrigin();
    const dataDir = await Deno.makeTempDir({ prefix: "image-ingest-crash-" });
    const expected = new Map<string, string>();
    for (let i = 0; i < N; i++) {
      const body = await makeImage(i % 2 ? "png" : "gif", {
        width: 4 + (i % 17),
        height: 3 + (i % 13),
        seed: i,
      });
      origin.set(`/img/${i}`, { body, delayMs: 40 });
      expected.set(origin.url(`/img/${i}`), createHash("sha256").update(body).digest("hex"));
    }
    const env = {
      DATA_DIR: dataDir,
      FETCH_ALLOW_HOSTS: origin.allowRule,
      LEASE_MS: "2000",
      SWEEP_INTERVAL_MS: "250",
      WORKER_CONCURRENCY: "8",
      PER_HOST_CONCURRENCY: "8",
    };
    try {
      const first = await spawnService(env);
      const api = client(first.base);
      const res = await api.request("/images", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ urls: [...expected.keys()] }),
      });
      assert.equal(res.status, 202);
      const job = await res.json();
      await waitFor(async () => {
        const j = await (await api.request(`/jobs/${job.id}`)).json();
        return j.counts.complete >= 100;
      }, "a fifth of the job");
      first.child.kill("SIGKILL");
      const status = await first.exited;
      assert.equal(status.signal, "SIGKILL");
      const hitsAtKill = origin.totalHits();
      assert.ok(hitsAtKill < N, `killed midway (${hitsAtKill} requests so far)`);

      const second = await spawnService(env);
      const api2 = client(second.base);
      const done = await waitForJob(api2, job.id, 60_000);
      assert.deepEqual(done.counts, { pending: 0, complete: N, failed: 0 });
      const items = await allItems(api2, job.id, "limit=1000");
      assert.equal(items.length, N);
      assert.ok(items.every((i) => i.state === "complete"));
      for (const [url, sha] of expected) {
        const meta = await (await api2.request(`/images/metadata?url=${encodeURIComponent(url)}`))
          .json();
        assert.equal(meta.sha256, sha, url);
      }
      second.child.kill("SIGTERM");
      assert.equal((await second.exited).code, 0, "SIGTERM exits cleanly");

      const { code, report } = await runFsck(env);
      assert.equal(code, 0, JSON.stringify(report));
      assert.equal(report.indexEntries, N);
      assert.deepEqual(report.brokenEntries, []);
      assert.deepEqual(report.orphanBlobs, []);
    } finally {
      await origin.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "fsck reports blobs with no index entry and entries with no blob, and --repair fixes both",
  sanitizeResources: false,
  fn: async () => {
    const origin = startImageOrigin();
    const dataDir = await Deno.makeTempDir({ prefix: "image-ingest-fsck-" });
    const env = { DATA_DIR: dataDir, FETCH_ALLOW_HOSTS: origin.allowRule };
    try {
      const a = await makeImage("png", { width: 8, height: 8, seed: 1 });
      const b = await makeImage("png", { width: 9, height: 9, seed: 2 });
      origin.set("/a.png", { body: a });
      origin.set("/b.png", { body: b });
      const svc = await spawnService(env);
      const api = client(svc.base);
      const res = await api.request("/images", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ urls: [origin.url("/a.png"), origin.url("/b.png")] }),
      });
      await waitForJob(api, (await res.json()).id);
      svc.child.kill("SIGTERM");
      await svc.exited;

      const clean = await runFsck(env);
      assert.equal(clean.code, 0);
      assert.equal(clean.report.indexEntries, 2);

      const sha = (x: Uint8Array) => createHash("sha256").update(x).digest("hex");
      const blobPath = (h: string) => `${dataDir}/blobs/${h.slice(0, 2)}/${h}`;
      await Deno.remove(blobPath(sha(a)));
      const orphan = "f".repeat(64);
      await Deno.mkdir(`${dataDir}/blobs/ff`, { recursive: true });
      await Deno.writeFile(blobPath(orphan), new Uint8Array([1, 2, 3]));

      const found = await runFsck(env, ["--all-orphans"]);
      assert.equal(found.code, 1);
      assert.deepEqual(found.report.brokenEntries.map((e: { url: string }) => e.url), [
        origin.url("/a.png"),
      ]);
      assert.deepEqual(found.report.orphanBlobs, [orphan]);

      const repaired = await runFsck(env, ["--repair", "--all-orphans"]);
      assert.equal(repaired.code, 0);
      const after = await runFsck(env, ["--all-orphans"]);
      assert.equal(after.code, 0);
      assert.equal(after.report.indexEntries, 1);
      assert.equal(after.report.blobs, 1);
    } finally {
      await origin.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

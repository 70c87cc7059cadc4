import assert from "node:assert/strict";
import { allItems, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import { spawnService } from "./support/subprocess.ts";

const client = (base: string) => ({
  request: (path: string, init?: RequestInit) => fetch(base + path, init),
});

Deno.test({
  name: "a large list is durable once answered: killed with SIGKILL right after the 202, " +
    "the restarted service writes every item and finishes the job",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const origin = startImageOrigin();
    const png = await makeImage("png", { width: 5, height: 5, seed: 21 });
    const dataDir = await Deno.makeTempDir({ prefix: "image-ingest-intake-crash-" });
    const env = {
      DATA_DIR: dataDir,
      FETCH_ALLOW_HOSTS: origin.allowRule,
      LEASE_MS: "2000",
      SWEEP_INTERVAL_MS: "250",
    };
    try {
      // Over 10,000 lines: committed in chunks, items written after the 202.
      const lines: string[] = [];
      for (let i = 0; i < 12_000; i++) {
        if (i % 1_000 === 0) {
          origin.set(`/${i}.png`, { body: png });
          lines.push(origin.url(`/${i}.png`));
        } else lines.push(`bad line ${i}`);
      }
      const first = await spawnService(env);
      const res = await client(first.base).request("/images", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: lines.join("\n"),
      });
      assert.equal(res.status, 202);
      const job = await res.json();
      first.child.kill("SIGKILL");
      assert.equal((await first.exited).signal, "SIGKILL");
      assert.deepEqual(job.counts, { pending: 12, complete: 0, failed: 11_988 });

      const second = await spawnService(env);
      const api = client(second.base);
      const done = await waitForJob(api, job.id, 60_000);
      assert.deepEqual(done.counts, { pending: 0, complete: 12, failed: 11_988 });
      const items = await allItems(api, job.id, "limit=1000");
      assert.equal(items.length, 12_000);
      assert.deepEqual(items.map((i) => i.index), items.map((_, n) => n));
      const stored = items.filter((i) => i.state === "complete").map((i) => i.index);
      assert.deepEqual(stored, [...Array(12).keys()].map((n) => n * 1_000));
      second.child.kill("SIGTERM");
      await second.exited;
    } finally {
      await origin.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

import assert from "node:assert/strict";
import { KvBatcher } from "../services/store/kv_batcher.ts";

Deno.test("KvBatcher merges concurrent commits on disjoint keys into fewer KV commits", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const batcher = new KvBatcher(kv);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        batcher.commit((w) => {
          w.check({ key: ["k", i], versionstamp: null }).set(["k", i], i).sum(["count"], 1n);
        })),
    );
    assert.ok(results.every((r) => r.ok));
    const stamps = new Set(results.map((r) => (r as Deno.KvCommitResult).versionstamp));
    assert.ok(stamps.size < 50, `50 commits became ${stamps.size}`);
    assert.equal((await kv.get<Deno.KvU64>(["count"])).value?.value, 50n);
    for (let i = 0; i < 50; i++) assert.equal((await kv.get(["k", i])).value, i);
  } finally {
    kv.close();
  }
});

Deno.test("KvBatcher fails only the caller whose check no longer holds", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await kv.set(["taken"], "someone");
    const batcher = new KvBatcher(kv);
    const [a, b, c] = await Promise.all([
      batcher.commit((w) => w.check({ key: ["a"], versionstamp: null }).set(["a"], 1)),
      batcher.commit((w) => w.check({ key: ["taken"], versionstamp: null }).set(["taken"], "me")),
      batcher.commit((w) => w.check({ key: ["c"], versionstamp: null }).set(["c"], 3)),
    ]);
    assert.deepEqual([a.ok, b.ok, c.ok], [true, false, true]);
    assert.equal((await kv.get(["taken"])).value, "someone");
    assert.equal((await kv.get(["a"])).value, 1);
    assert.equal((await kv.get(["c"])).value, 3);
  } finally {
    kv.close();
  }
});

Deno.test("KvBatcher never lets two commits on the same key pass the same check", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const batcher = new KvBatcher(kv);
    // Both claim the same lease as absent: exactly one may win, as with separate commits.
    const results = await Promise.all(
      ["x", "y"].map((who) =>
        batcher.commit((w) => w.check({ key: ["lease"], versionstamp: null }).set(["lease"], who))
      ),
    );
    assert.equal(results.filter((r) => r.ok).length, 1);
  } finally {
    kv.close();
  }
});

Deno.test("KvBatcher starts a second batch only when more is queued than one batch can take", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const batcher = new KvBatcher(kv);
    const commitAll = (n: number, from: number) =>
      Promise.all(Array.from({ length: n }, (_, i) =>
        batcher.commit((w) => {
          w.check({ key: ["k", from + i], versionstamp: null }).set(["k", from + i], i);
        })));
    // 60 commits of one check each: the first goes alone, the other 59 fit one batch (100 checks).
    const small = await commitAll(60, 0);
    assert.equal(new Set(small.map((r) => (r as Deno.KvCommitResult).versionstamp)).size, 2);
    // 250 more overflow one batch: more batches run, and all commit.
    const large = await commitAll(250, 1000);
    assert.ok(large.every((r) => r.ok));
    const batches = new Set(large.map((r) => (r as Deno.KvCommitResult).versionstamp)).size;
    assert.ok(batches >= 3 && batches <= 6, `${batches} batches`);
  } finally {
    kv.close();
  }
});

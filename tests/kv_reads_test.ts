import assert from "node:assert/strict";
import { KvReadBatcher } from "../services/store/kv_reads.ts";

/** A real in-memory KV whose getMany calls are counted. */
async function countingKv() {
  const kv = await Deno.openKv(":memory:");
  const calls: number[] = [];
  const getMany = kv.getMany.bind(kv);
  kv.getMany = ((keys: Deno.KvKey[]) => {
    calls.push(keys.length);
    return getMany(keys);
  }) as typeof kv.getMany;
  return { kv, calls };
}

Deno.test("KvReadBatcher: reads started together share getMany calls and each gets its own entries", async () => {
  const { kv, calls } = await countingKv();
  try {
    for (let i = 0; i < 30; i++) await kv.set(["n", i], i * 10);
    const reads = new KvReadBatcher(kv);
    const results = await Promise.all(
      Array.from(
        { length: 30 },
        (_, i) =>
          i % 5 === 0
            ? reads.getMany<[number]>([["n", i]])
            : reads.getMany<[number, number, number]>([["n", i], ["missing", i], [
              "n",
              (i + 1) % 30,
            ]]),
      ),
    );
    results.forEach((entries, i) => {
      assert.equal(entries[0].value, i * 10);
      if (i % 5 !== 0) {
        assert.equal(entries.length, 3);
        assert.equal(entries[1].versionstamp, null);
        assert.equal(entries[2].value, ((i + 1) % 30) * 10);
      } else assert.equal(entries.length, 1);
    });
    // 6 one-key and 24 three-key reads: 78 keys, so at least 8 calls and far fewer than 30.
    assert.ok(calls.length >= 8 && calls.length <= 12, `getMany calls: ${calls}`);
    assert.ok(calls.every((n) => n <= 10));
  } finally {
    kv.close();
  }
});

Deno.test("KvReadBatcher: a lone read is not held back, and a failed getMany rejects its group only", async () => {
  const { kv, calls } = await countingKv();
  const reads = new KvReadBatcher(kv);
  await kv.set(["a"], 1);
  const started = performance.now();
  const [entry] = await reads.getMany<[number]>([["a"]]);
  assert.equal(entry.value, 1);
  assert.ok(performance.now() - started < 50);
  assert.deepEqual(calls, [1]);
  kv.close();
  await assert.rejects(reads.getMany([["a"]]));
  assert.throws(() => reads.getMany(Array.from({ length: 11 }, (_, i) => ["k", i])), RangeError);
});

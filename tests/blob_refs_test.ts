/**
 * Reference counts, the collector and DELETE /images: identical bytes under
 * several URLs, deletes, refreshes that change the bytes, derivatives, and
 * the races between a collection and a new reference to the same bytes.
 * After every mix, fsck is clean and the files on disk are exactly the
 * referenced ones.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fsck, isClean } from "../services/fsck.ts";
import { BlobGone } from "../services/store/blob_refs.ts";
import { urlHash } from "../services/store/ids.ts";
import type { ImageRecord } from "../services/store/records.ts";
import { startTestService, type TestService } from "./support/app.ts";
import { assertProblem, submit, waitForJob } from "./support/http.ts";
import { startImageOrigin, waitFor } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Writes `bytes` durably to the service's blob store, as a download does. */
async function storeBytes(t: TestService, bytes: Uint8Array): Promise<string> {
  const staged = await t.service.blobs.stage((async function* () {
    yield bytes.slice(); // the store takes ownership of what it is given
  })());
  await staged.commit();
  return staged.sha256;
}

function recordFor(url: string, bytes: Uint8Array): Omit<ImageRecord, "seq"> {
  return {
    url,
    sha256: sha256(bytes),
    bytes: bytes.byteLength,
    format: "png",
    contentType: "image/png",
    width: 1,
    height: 1,
    storedAt: Date.now(),
    checkedAt: Date.now(),
  };
}

/** Stores `bytes` under `url` through the repo, as uploads and downloads do. */
async function putImage(t: TestService, url: string, bytes: Uint8Array): Promise<void> {
  await storeBytes(t, bytes);
  await t.service.images.put(recordFor(url, bytes), urlHash(url));
}

async function filesOnDisk(t: TestService): Promise<string[]> {
  const out: string[] = [];
  for await (const sha of t.service.blobs.list()) out.push(sha);
  return out.sort();
}

async function assertConsistent(t: TestService, expectedFiles: string[]): Promise<void> {
  // Collections started by puts run in the background: let them finish.
  await waitFor(async () => {
    await t.service.collector.sweep();
    const queued = t.service.kv.list({ prefix: t.service.refs.keys.allToCollect() });
    return (await queued.next()).done === true;
  }, "queued collections to finish");
  const report = await fsck(t.service, { repair: false, minOrphanAgeMs: 0 });
  assert.ok(isClean(report), JSON.stringify(report, null, 2));
  assert.equal(report.queuedCollections, 0);
  assert.deepEqual(await filesOnDisk(t), [...new Set(expectedFiles)].sort());
}

const bytesOf = (n: number) => new TextEncoder().encode(`blob number ${n}`);

Deno.test("DELETE /images: 204, then 404 for it; its bytes are gone; a second delete is 404", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule });
  try {
    const png = await makeImage("png", { width: 8, height: 8, seed: 3 });
    origin.set("/a.png", { body: png });
    const url = origin.url("/a.png");
    const job = await submit(t.app, { urls: [url] });
    await waitForJob(t.app, job.id);
    await assertConsistent(t, [sha256(png)]);

    const q = `?url=${encodeURIComponent(url)}`;
    const res = await t.app.request(`/images${q}`, { method: "DELETE" });
    assert.equal(res.status, 204);
    assert.equal(await res.text(), "");
    await assertProblem(await t.app.request(`/images/content${q}`), 404);
    await assertProblem(await t.app.request(`/images/metadata${q}`), 404);
    assert.deepEqual((await (await t.app.request("/images")).json()).items, []);
    // Gone before the answer: no background collection to wait for.
    assert.deepEqual(await filesOnDisk(t), []);
    assert.equal(await t.service.refs.count(sha256(png)), 0);
    await assertProblem(await t.app.request(`/images${q}`, { method: "DELETE" }), 404);
    await assertProblem(await t.app.request(`/images`, { method: "DELETE" }), 400);
    await assertConsistent(t, []);

    // Submitted again, it is downloaded anew and served.
    const again = await submit(t.app, { urls: [url] });
    assert.equal((await waitForJob(t.app, again.id)).counts.complete, 1);
    assert.equal((await t.app.request(`/images/content${q}`)).status, 200);
    await assertConsistent(t, [sha256(png)]);
  } finally {
    await t.close();
    await origin.close();
  }
});

Deno.test("two URLs with identical bytes share one blob until the last of them is deleted", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const bytes = bytesOf(1);
    await putImage(t, "http://a.test/1", bytes);
    await putImage(t, "http://b.test/1", bytes);
    assert.equal(await t.service.refs.count(sha256(bytes)), 2);
    await assertConsistent(t, [sha256(bytes)]);

    const del = (url: string) =>
      t.app.request(`/images?url=${encodeURIComponent(url)}`, { method: "DELETE" });
    assert.equal((await del("http://a.test/1")).status, 204);
    assert.equal(await t.service.refs.count(sha256(bytes)), 1);
    const still = await t.app.request(
      `/images/content?url=${encodeURIComponent("http://b.test/1")}`,
    );
    assert.deepEqual(new Uint8Array(await still.arrayBuffer()), bytes);
    await assertConsistent(t, [sha256(bytes)]);

    assert.equal((await del("http://b.test/1")).status, 204);
    await assertConsistent(t, []);
  } finally {
    await t.close();
  }
});

Deno.test("replacing a URL's bytes moves its reference; the old bytes go unless another URL has them", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const [one, two] = [bytesOf(1), bytesOf(2)];
    await putImage(t, "http://a.test/x", one);
    await putImage(t, "http://b.test/x", one);
    await putImage(t, "http://a.test/x", two); // b still holds `one`
    await assertConsistent(t, [sha256(one), sha256(two)]);
    await putImage(t, "http://b.test/x", two); // nothing holds `one` now
    await assertConsistent(t, [sha256(two)]);
    assert.equal(await t.service.refs.count(sha256(two)), 2);
    await putImage(t, "http://b.test/x", two); // same bytes again: no change
    assert.equal(await t.service.refs.count(sha256(two)), 2);
  } finally {
    await t.close();
  }
});

Deno.test("derivatives live as long as their source, and their bytes as long as anything refers to them", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const [source, small, shared] = [bytesOf(10), bytesOf(11), bytesOf(12)];
    await putImage(t, "http://a.test/src", source);
    const src = sha256(source);
    const record = (b: Uint8Array) => ({
      sha256: sha256(b),
      bytes: b.byteLength,
      format: "webp" as const,
      contentType: "image/webp",
      width: 1,
      height: 1,
    });
    await storeBytes(t, small);
    assert.equal(await t.service.derivatives.put(src, "w=1", record(small)), true);
    // A derivative whose bytes another URL also has.
    await putImage(t, "http://a.test/shared", shared);
    assert.equal(await t.service.derivatives.put(src, "w=2", record(shared)), true);
    assert.deepEqual(await t.service.derivatives.get(src, "w=1"), record(small));
    assert.equal(await t.service.refs.count(sha256(shared)), 2);
    await assertConsistent(t, [src, sha256(small), sha256(shared)]);

    const res = await t.app.request(`/images?url=${encodeURIComponent("http://a.test/src")}`, {
      method: "DELETE",
    });
    assert.equal(res.status, 204);
    assert.equal(await t.service.derivatives.get(src, "w=1"), null);
    assert.equal(await t.service.refs.count(sha256(shared)), 1);
    await assertConsistent(t, [sha256(shared)]);

    // A derivative of a source nothing refers to is not recorded, and its bytes go.
    await storeBytes(t, small);
    assert.equal(await t.service.derivatives.put(src, "w=1", record(small)), false);
    await assertConsistent(t, [sha256(shared)]);
  } finally {
    await t.close();
  }
});

Deno.test("a writer waits while its bytes are being collected, and is told when they are gone", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const { refs, kv } = t.service;
    const bytes = bytesOf(20);
    const sha = sha256(bytes);
    const mark = refs.keys.mark(sha);
    // A collection holds the mark: prepareAdd waits until it ends.
    await kv.set(mark, { state: "collecting", until: Date.now() + 10_000, owner: "other" });
    let settled = false;
    const waiting = refs.prepareAdd(sha, () => Promise.resolve(false)).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(settled, false, "still waiting while the collection runs");
    await kv.set(mark, { state: "collected", at: Date.now() });
    // The bytes are not on disk: the writer must store them again.
    await assert.rejects(waiting, BlobGone);

    // Written again after the collection: the writer may reference them.
    await storeBytes(t, bytes);
    const token = await refs.prepareAdd(
      sha,
      async () => (await t.service.blobs.stat(sha)) !== null,
    );
    const op = kv.atomic();
    refs.addRef(op, token);
    assert.equal((await op.commit()).ok, true);
    assert.equal(await refs.count(sha), 1);

    // A collection that died midway (lease over) is not waited for.
    await kv.set(mark, { state: "collecting", until: Date.now() - 1, owner: "dead" });
    await assert.rejects(refs.prepareAdd(sha, () => Promise.resolve(true)), BlobGone);
  } finally {
    await t.close();
  }
});

Deno.test("a reference prepared before a collection started cannot be committed after it", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const { refs, kv, collector } = t.service;
    const bytes = bytesOf(30);
    const sha = await storeBytes(t, bytes);
    await t.service.refs.requestCollection(sha);
    // A writer reads the mark (pending), then the collector runs.
    const token = await refs.prepareAdd(sha, () => Promise.resolve(true));
    assert.deepEqual(await collector.collect(sha), [sha]);
    const op = kv.atomic();
    refs.addRef(op, token);
    assert.equal((await op.commit()).ok, false, "the mark moved on: the writer must look again");
    await assert.rejects(
      refs.prepareAdd(sha, async () => (await t.service.blobs.stat(sha)) !== null),
      BlobGone,
    );
    await assertConsistent(t, []);
  } finally {
    await t.close();
  }
});

Deno.test("a collection the sweep finds unfinished (lease over) is taken over and completed", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const { refs, kv, collector } = t.service;
    const sha = await storeBytes(t, bytesOf(40));
    await kv.atomic()
      .set(refs.keys.mark(sha), { state: "collecting", until: Date.now() - 1, owner: "dead" })
      .set(refs.keys.toCollect(sha), null)
      .commit();
    assert.equal(await collector.sweep(), 1);
    await assertConsistent(t, []);
    assert.equal((await kv.get<{ state: string }>(refs.keys.mark(sha))).value?.state, "collected");
  } finally {
    await t.close();
  }
});

/** A small deterministic generator, so a failing mix can be replayed from its seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

Deno.test("any mix of puts, replacements, deletes and derivatives, run concurrently, leaves counts and files exact", async () => {
  const seed = 20261203;
  const t = await startTestService({}, { startWorker: false });
  try {
    const next = rng(seed);
    const pick = (n: number) => Math.floor(next() * n);
    const urls = Array.from({ length: 6 }, (_, i) => `http://mix.test/${i}`);
    const payloads = Array.from({ length: 4 }, (_, i) => bytesOf(100 + i));
    const expected = new Map<string, Uint8Array>(); // url -> bytes, once every round settles
    for (let round = 0; round < 12; round++) {
      // Each URL gets at most one operation per round, so the end state is known;
      // different URLs with the same bytes race on the same counts and blobs.
      const ops: Promise<unknown>[] = [];
      for (const url of urls) {
        const what = pick(4);
        if (what === 0) continue;
        if (what === 3) {
          expected.delete(url);
          ops.push(
            Promise.resolve(
              t.app.request(`/images?url=${encodeURIComponent(url)}`, { method: "DELETE" }),
            ),
          );
        } else {
          const bytes = payloads[pick(payloads.length)];
          expected.set(url, bytes);
          ops.push(
            putImage(t, url, bytes).catch(async (err) => {
              // Collected between its write and its index commit: store again, as a retry does.
              if (!(err instanceof BlobGone)) throw err;
              await putImage(t, url, bytes);
            }),
          );
        }
      }
      await Promise.all(ops);
      const wanted = [...expected.values()].map(sha256);
      for (const sha of new Set(wanted)) {
        assert.equal(
          await t.service.refs.count(sha),
          wanted.filter((w) => w === sha).length,
          `seed ${seed}, round ${round}: count of ${sha}`,
        );
      }
      await assertConsistent(t, wanted);
    }
  } finally {
    await t.close();
  }
});

Deno.test("fsck finds wrong counts, stray derivatives and orphan bytes, and --repair fixes them", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const { kv, refs } = t.service;
    const [kept, orphan, derived] = [bytesOf(50), bytesOf(51), bytesOf(52)];
    await putImage(t, "http://a.test/kept", kept);
    await storeBytes(t, orphan);
    await storeBytes(t, derived);
    // Damage: a count one too high, and a derivative entry whose source nothing refers to.
    await kv.set(refs.keys.refs(sha256(kept)), new Deno.KvU64(2n));
    await kv.atomic()
      .set(refs.keys.derivative("f".repeat(64), "w=1"), {
        sha256: sha256(derived),
        bytes: derived.byteLength,
        format: "webp",
        contentType: "image/webp",
        width: 1,
        height: 1,
      })
      .sum(refs.keys.refs(sha256(derived)), 1n)
      .commit();

    const found = await fsck(t.service, { repair: false, minOrphanAgeMs: 0 });
    assert.equal(isClean(found), false);
    assert.deepEqual(found.countMismatches, [{ sha256: sha256(kept), stored: 2, expected: 1 }]);
    assert.deepEqual(found.orphanBlobs, [sha256(orphan)]);
    assert.equal(found.strayDerivatives.length, 1);
    assert.equal(found.strayDerivatives[0].problem, "source_unreferenced");
    // Without --repair nothing changes.
    assert.equal(await refs.count(sha256(kept)), 2);
    assert.equal((await filesOnDisk(t)).length, 3);

    const repaired = await fsck(t.service, { repair: true, minOrphanAgeMs: 0 });
    assert.equal(repaired.repaired, true);
    await assertConsistent(t, [sha256(kept)]);
    assert.equal(await refs.count(sha256(kept)), 1);
  } finally {
    await t.close();
  }
});

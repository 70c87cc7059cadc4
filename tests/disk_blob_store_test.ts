import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DiskBlobStore } from "../services/blobs/disk_blob_store.ts";

async function withStore(fn: (store: DiskBlobStore, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "blobs-" });
  const store = new DiskBlobStore(dir);
  try {
    await fn(store, dir);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await filesUnder(path));
    else out.push(path);
  }
  return out;
}

const chunks = (bytes: Uint8Array, size: number) =>
  ReadableStream.from(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
      bytes.slice(i * size, (i + 1) * size)),
  );

Deno.test("DiskBlobStore stages while hashing, and only commit makes the bytes readable", async () => {
  await withStore(async (store, dir) => {
    // Larger than the write buffer, in small network-sized chunks.
    const bytes = Uint8Array.from({ length: 700_000 }, (_, i) => (i * 7919) % 251);
    const staged = await store.stage(chunks(bytes, 16_384));
    assert.equal(staged.sha256, createHash("sha256").update(bytes).digest("hex"));
    assert.equal(staged.bytes, bytes.length);
    assert.equal(await store.get(staged.sha256), null, "not visible before commit");
    await staged.commit();
    const back = new Uint8Array(await new Response(await store.get(staged.sha256)).arrayBuffer());
    assert.deepEqual(back, bytes);
    const part = await store.get(staged.sha256, { start: 10, end: 19 });
    assert.deepEqual(
      new Uint8Array(await new Response(part).arrayBuffer()),
      bytes.subarray(10, 20),
    );
    assert.deepEqual(await store.stat(staged.sha256).then((s) => s?.bytes), bytes.length);
    assert.deepEqual(await Array.fromAsync(store.list()), [staged.sha256]);
    assert.deepEqual(await filesUnder(`${dir}/tmp`), [], "no temporary file is left");
  });
});

Deno.test("DiskBlobStore leaves nothing behind on discard or when the body fails", async () => {
  await withStore(async (store, dir) => {
    const staged = await store.stage(chunks(new Uint8Array(1000), 100));
    await staged.discard();
    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(300_000));
        controller.error(new Error("connection reset"));
      },
    });
    await assert.rejects(store.stage(failing), /connection reset/);
    assert.deepEqual(await filesUnder(dir), []);
  });
});

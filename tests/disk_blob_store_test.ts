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

/** Fails instead of hanging when `p` never settles. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("DiskBlobStore: staging keeps going past its unwritten-bytes budget (the budget is returned)", async () => {
  await withStore(async (store) => {
    // 100 x 200 KB = 20 MB, more than the 16 MB that may wait for the writer:
    // a budget that were never returned would stall here.
    const staged = [];
    for (let i = 0; i < 100; i++) {
      const bytes = new Uint8Array(200_000);
      bytes[0] = i;
      staged.push(await within(10_000, store.stage(chunks(bytes, 65_536)), `stage ${i}`));
    }
    await Promise.all(staged.map((s) => s.commit()));
    assert.equal((await Array.fromAsync(store.list())).length, 100);
  });
});

Deno.test("DiskBlobStore: a write that fails surfaces at commit and leaves nothing behind", async () => {
  await withStore(async (store, dir) => {
    await (await store.stage(chunks(new Uint8Array(10), 10))).discard(); // directories made
    // A file where the temporary directory should be: nothing can be created there.
    await Deno.remove(`${dir}/tmp`, { recursive: true });
    await Deno.writeTextFile(`${dir}/tmp`, "");
    const staged = await store.stage(chunks(new Uint8Array(5000), 1000));
    await assert.rejects(staged.commit(), /cannot store blob/);
    assert.equal(await store.get(staged.sha256), null);
    assert.deepEqual(await filesUnder(dir), [`${dir}/tmp`]);
  });
});

Deno.test("DiskBlobStore: a temporary directory removed while running is made again", async () => {
  await withStore(async (store, dir) => {
    await (await store.stage(chunks(new Uint8Array(10), 10))).discard(); // directories made
    await Deno.remove(`${dir}/tmp`, { recursive: true });
    const bytes = new Uint8Array(5000).fill(7);
    const staged = await store.stage(chunks(bytes, 1000));
    await staged.commit();
    const back = await new Response(await store.get(staged.sha256)).arrayBuffer();
    assert.deepEqual(new Uint8Array(back), bytes);
  });
});

Deno.test("DiskBlobStore takes consecutive views of one buffer whole: handed over, not copied", async () => {
  const dir = await Deno.makeTempDir();
  const store = new DiskBlobStore(dir);
  try {
    const buffer = new Uint8Array(100_000);
    crypto.getRandomValues(buffer.subarray(0, 65_536));
    crypto.getRandomValues(buffer.subarray(65_536));
    const expected = buffer.slice();
    const views = [buffer.subarray(0, 10), buffer.subarray(10, 70_000), buffer.subarray(70_000)];
    const staged = await store.stage(ReadableStream.from(views));
    assert.equal(buffer.byteLength, 0, "the buffer went to the writer thread as it was");
    await staged.commit();
    const stream = await store.get(staged.sha256);
    assert.deepEqual(new Uint8Array(await new Response(stream).arrayBuffer()), expected);

    // Views with a gap between them are copied, and the source stays usable.
    const source = expected.slice();
    const gapped = [source.subarray(0, 10), source.subarray(20, 30)];
    const copied = await store.stage(ReadableStream.from(gapped));
    assert.equal(source.byteLength, expected.byteLength);
    await copied.commit();
    const back = await store.get(copied.sha256);
    assert.deepEqual(
      new Uint8Array(await new Response(back).arrayBuffer()),
      new Uint8Array([...expected.subarray(0, 10), ...expected.subarray(20, 30)]),
    );
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

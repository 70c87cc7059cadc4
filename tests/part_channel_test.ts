import assert from "node:assert/strict";
import { PartChannel } from "../services/upload/part_channel.ts";

const settled = async (p: Promise<unknown>) => {
  let done = false;
  p.then(() => done = true, () => done = true);
  await new Promise((r) => setTimeout(r, 10));
  return done;
};

Deno.test("PartChannel: a write settles only once the reader asks for the next chunk", async () => {
  const channel = new PartChannel();
  const reader = channel[Symbol.asyncIterator]();
  const first = channel.write(Uint8Array.of(1));
  assert.deepEqual((await reader.next()).value, Uint8Array.of(1));
  assert.equal(await settled(first), false, "held while the reader deals with the chunk");
  const next = reader.next();
  assert.equal(await settled(first), true);
  channel.end();
  assert.equal((await next).done, true);
});

Deno.test("PartChannel: a reader that stops rejects the waiting writer; fail() reaches the reader", async () => {
  const channel = new PartChannel();
  const reader = channel[Symbol.asyncIterator]();
  const write = channel.write(Uint8Array.of(1));
  await reader.next();
  await reader.return!();
  await assert.rejects(write);

  const other = new PartChannel();
  const pending = other[Symbol.asyncIterator]().next();
  other.fail(new Error("client went away"));
  await assert.rejects(pending, /client went away/);
});

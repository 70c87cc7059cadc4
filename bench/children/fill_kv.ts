/**
 * Writes `count` image index entries straight into a (not running) service's KV file, in the
 * layout of services/store/kv_keys.ts: [ns,"images",urlHash] and [ns,"images_by_seq",seq], both
 * holding the record, as ImagesRepo.put writes them (without its per-record read and lease
 * delete, which an empty store does not need). Prints JSON with the time taken and the sequence
 * number after which the middle page starts.
 *
 * Usage: deno run --unstable-kv ... fill_kv.ts KV_PATH COUNT
 */
import { ulid, urlHash } from "../../services/store/ids.ts";
import { keys } from "../../services/store/kv_keys.ts";
import type { ImageRecord } from "../../services/store/records.ts";

const [kvPath, countArg] = Deno.args;
const count = Number(countArg);
const k = keys();
const kv = await Deno.openKv(kvPath);

const PER_COMMIT = 500; // two mutations each: 1000, KV's limit per commit
const IN_FLIGHT = 4;
const t0 = performance.now();
let midSeq: string | null = null;
const pending: Promise<unknown>[] = [];
for (let start = 0; start < count; start += PER_COMMIT) {
  const op = kv.atomic();
  for (let i = start; i < Math.min(count, start + PER_COMMIT); i++) {
    const url = `http://127.0.0.1:9/bench/list/${String(i).padStart(6, "0")}.png`;
    const record: ImageRecord = {
      url,
      sha256: urlHash(`bytes:${i}`),
      bytes: 20_000 + (i % 40_000),
      format: "png",
      contentType: "image/png",
      width: 320 + (i % 640),
      height: 240 + (i % 480),
      storedAt: Date.now(),
      seq: ulid(),
    };
    if (i === Math.floor(count / 2) - 1) midSeq = record.seq;
    op.set(k.image(urlHash(url)), record).set(k.imageBySeq(record.seq), record);
  }
  pending.push(
    op.commit().then((r) => {
      if (!r.ok) throw new Error("commit failed");
    }),
  );
  if (pending.length >= IN_FLIGHT) await Promise.all(pending.splice(0));
}
await Promise.all(pending);
kv.close();
console.log(JSON.stringify({ count, ms: performance.now() - t0, midSeq }));

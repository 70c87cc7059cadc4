/**
 * The ingest baselines: the plainest loops that do the same job from the outside. Each fetches
 * every URL of a list with N requests in flight and stores each body, then prints one JSON line
 * with the time from the first request to the last body stored.
 *
 *   plain    fetch -> arrayBuffer -> Deno.writeFile(DIR/i)          (the reference baseline)
 *   durable  fetch -> the durable work of the service's blob store, nothing else
 *            (durable_store.ts: stream + SHA-256 to a temp file, fsync, rename into
 *            blobs/<aa>/<sha256>, grouped directory fsync)          (the ingest target's baseline)
 *   fsync    plain, plus fsync of each file before closing it       (diagnostic)
 *   stream   durable without any fsync                              (diagnostic)
 *
 * Usage: plain_ingest.ts URLS_JSON OUT_DIR CONCURRENCY [plain|durable|fsync|stream]
 */
import process from "node:process";
import { DurableStore } from "./durable_store.ts";

const MODES = ["plain", "durable", "fsync", "stream"];
const [urlsFile, outDir, concurrencyArg, mode = "plain"] = Deno.args;
if (!MODES.includes(mode)) throw new Error(`unknown mode ${mode}`);
const concurrency = Number(concurrencyArg);
const urls = JSON.parse(await Deno.readTextFile(urlsFile)) as string[];
for (const u of urls) {
  const host = new URL(u).hostname;
  if (host !== "127.0.0.1" && host !== "[::1]") throw new Error(`not a loopback URL: ${u}`);
}
await Deno.mkdir(outDir, { recursive: true });
const store = mode === "durable" || mode === "stream"
  ? new DurableStore(outDir, mode === "durable")
  : null;
await store?.init();

/** Stores one body the plain way, with or without an fsync. */
async function writeWhole(res: Response, i: number, sync: boolean): Promise<number> {
  const buf = new Uint8Array(await res.arrayBuffer());
  if (!sync) {
    await Deno.writeFile(`${outDir}/${i}`, buf);
    return buf.byteLength;
  }
  const file = await Deno.open(`${outDir}/${i}`, { write: true, createNew: true });
  try {
    for (let off = 0; off < buf.byteLength;) off += await file.write(buf.subarray(off));
    await file.sync();
  } finally {
    file.close();
  }
  return buf.byteLength;
}

let next = 0;
let bytes = 0;
let stored = 0;
const errors: string[] = [];
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  for (;;) {
    const i = next++;
    if (i >= urls.length) return;
    try {
      const res = await fetch(urls[i], { signal: AbortSignal.timeout(30_000) });
      if (!res.ok || !res.body) {
        errors.push(`${urls[i]}: ${res.status}`);
        await res.body?.cancel();
        continue;
      }
      const n = store ? await store.put(res.body, i) : await writeWhole(res, i, mode === "fsync");
      bytes += n; // after the await: `bytes += await ...` would lose concurrent updates
      stored++;
    } catch (err) {
      errors.push(`${urls[i]}: ${(err as Error).message}`);
    }
  }
}));
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({
  mode,
  ms,
  bytes,
  stored,
  cpuMs: (cpu.user + cpu.system) / 1000,
  errorCount: errors.length,
  errors: errors.slice(0, 5),
}));

/**
 * The ingest baseline: the plainest loop that does the same job from the outside. Fetches every
 * URL of a list with N requests in flight and writes each body to a file, then prints one JSON
 * line with the time from the first request to the last write.
 *
 *   plain    fetch -> arrayBuffer -> Deno.writeFile(DIR/i)           (the baseline)
 *   durable  fetch -> stream to a temp file while hashing (SHA-256) -> fsync -> rename to
 *            DIR/<sha256> (what the service's blob store does per image; a diagnostic only)
 *   fsync    plain, plus fsync of each file before closing it (diagnostic)
 *   stream   durable without the fsync (diagnostic)
 *
 * Usage: plain_ingest.ts URLS_JSON OUT_DIR CONCURRENCY [plain|durable]
 */
import { createHash } from "node:crypto";
import process from "node:process";

const [urlsFile, outDir, concurrencyArg, mode = "plain"] = Deno.args;
const concurrency = Number(concurrencyArg);
const urls = JSON.parse(await Deno.readTextFile(urlsFile)) as string[];
for (const u of urls) {
  const host = new URL(u).hostname;
  if (host !== "127.0.0.1" && host !== "[::1]") throw new Error(`not a loopback URL: ${u}`);
}
await Deno.mkdir(`${outDir}/tmp`, { recursive: true });

async function durableWrite(
  body: ReadableStream<Uint8Array>,
  i: number,
  sync: boolean,
): Promise<number> {
  const tmp = `${outDir}/tmp/${i}`;
  const file = await Deno.open(tmp, { write: true, createNew: true });
  const hash = createHash("sha256");
  let bytes = 0;
  // Chunks are gathered up to 256 KB per write, as the service does: most images take one write.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    const buf = pending.length === 1 ? pending[0] : new Uint8Array(pendingBytes);
    if (pending.length > 1) {
      let at = 0;
      for (const p of pending) {
        buf.set(p, at);
        at += p.byteLength;
      }
    }
    pending = [];
    pendingBytes = 0;
    for (let off = 0; off < buf.byteLength;) off += await file.write(buf.subarray(off));
  };
  try {
    for await (const chunk of body) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      pending.push(chunk);
      pendingBytes += chunk.byteLength;
      if (pendingBytes >= 256 * 1024) await flush();
    }
    if (pendingBytes > 0) await flush();
    if (sync) await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, `${outDir}/${hash.digest("hex")}`);
  return bytes;
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
      let n: number;
      if (mode === "durable" || mode === "stream") {
        n = await durableWrite(res.body, i, mode === "durable");
      } else if (mode === "fsync") {
        const buf = new Uint8Array(await res.arrayBuffer());
        const file = await Deno.open(`${outDir}/${i}`, { write: true, createNew: true });
        try {
          for (let off = 0; off < buf.byteLength;) off += await file.write(buf.subarray(off));
          await file.sync();
        } finally {
          file.close();
        }
        n = buf.byteLength;
      } else {
        const buf = new Uint8Array(await res.arrayBuffer());
        await Deno.writeFile(`${outDir}/${i}`, buf);
        n = buf.byteLength;
      }
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

/**
 * Run as its own process with `--v8-flags=--expose-gc`: serves the app on
 * the KV file given, downloads one job's results file through a real
 * Deno.serve, and prints how much the heap held (after GC) while reading.
 */
import { startTestService } from "./app.ts";
import { serveApp } from "./sse.ts";

const [kvPath, jobId, format] = Deno.args;
const gc = (globalThis as { gc?: () => void }).gc!;
const t = await startTestService({ KV_PATH: kvPath }, { startWorker: false });
const server = serveApp(t.app.fetch);
gc();
const base = Deno.memoryUsage().heapUsed;
const started = Date.now();
const res = await fetch(`${server.base}/jobs/${jobId}/results.${format}`);
const reader = res.body!.getReader();
let firstByteMs = -1;
let bytes = 0;
let lines = 0;
let peak = 0;
let sinceGc = 0;
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  if (firstByteMs < 0) firstByteMs = Date.now() - started;
  bytes += value.length;
  sinceGc += value.length;
  for (const b of value) if (b === 10) lines++;
  if (sinceGc > 1024 * 1024) {
    sinceGc = 0;
    gc();
    peak = Math.max(peak, Deno.memoryUsage().heapUsed - base);
  }
}
const totalMs = Date.now() - started;
await server.close();
await t.close();
console.log(JSON.stringify({ status: res.status, bytes, lines, peak, firstByteMs, totalMs }));

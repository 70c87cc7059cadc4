/**
 * Throttled: 200 of the ingest images (every tenth, so the same mix of formats and sizes) from
 * an origin that sends every body at 1 MB/s per connection, in its own process. The service
 * (PER_HOST_CONCURRENCY = WORKER_CONCURRENCY = 32) against the plain loop (fetch + writeFile, 32
 * in flight) on the same origin, alternating, fresh service and DATA_DIR per run. Here the
 * network, not the disk or the CPU, sets the pace: the figure shows how well the service keeps
 * 32 slow downloads going. Ratio = service rate / plain rate.
 */
import type { Ctx, Row } from "./common.ts";
import { serviceEnv } from "./common.ts";
import { type IngestRun, loopRun, medianOf, serviceRun, showRun, workload } from "./ingest_runs.ts";
import { Leftovers, settleDisk } from "../lib/disk.ts";
import { spawnOrigin } from "../lib/proc.ts";
import { fmt, median, round } from "../lib/stats.ts";

const EVERY = 10;
const BYTES_PER_SEC = 1_000_000;
const CONCURRENCY = 32;
const ROUNDS = 5;
/** A run lasts about a second: 20 ms polling would add up to 2% noise. */
const POLL_MS = 10;
const TARGET = 0.9;

export async function throttled(ctx: Ctx) {
  const { dir, manifest } = await ctx.fixtures();
  const files = manifest.files.filter((_, i) => i % EVERY === 0);
  const origin = await spawnOrigin(ctx.res, "throttled-origin", dir, {
    throttleBytesPerSec: BYTES_PER_SEC,
  });
  ctx.log(`throttled origin (${fmt(BYTES_PER_SEC / 1e6)} MB/s per connection) at ${origin.base}`);
  const work = await ctx.res.tempDir("throttled");
  const w = await workload(
    files.map((f) => `${origin.base}${f.path}`),
    files.reduce((a, f) => a + f.bytes, 0),
    origin,
    work,
  );
  const sizes = files.map((f) => f.bytes);
  // No client can finish sooner than the largest body at the link rate, nor sooner than all the
  // bytes spread perfectly over the connections.
  const floorMs = Math.max(Math.max(...sizes), w.totalBytes / CONCURRENCY) / BYTES_PER_SEC * 1000;
  const leftovers = new Leftovers(ctx.res);

  const plain = async (round: number) => {
    const outDir = `${work}/plain-${round}`;
    leftovers.keep(outDir);
    return await loopRun(ctx, w, {
      side: "plain",
      round,
      mode: "plain",
      outDir,
      concurrency: CONCURRENCY,
    });
  };
  const service = async (round: number) => {
    const dataDir = await ctx.res.tempDir(`throttled-data-${round}`);
    leftovers.keep(dataDir);
    return await serviceRun(ctx, w, {
      side: "service",
      round,
      dataDir,
      env: serviceEnv(dataDir, origin.port, { PER_HOST_CONCURRENCY: String(CONCURRENCY) }),
      pollMs: POLL_MS,
      timeoutMs: 120_000,
    });
  };

  const runs: IngestRun[] = [];
  try {
    await settleDisk();
    const warm = await plain(0);
    ctx.log(`  warm-up plain loop: ${fmt(warm.ms)} ms (link-limited floor ${fmt(floorMs)} ms)`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const run of [plain, service]) {
        const r = await run(round);
        runs.push(r);
        showRun(ctx, "throttled", r);
      }
    }
  } finally {
    await ctx.res.stop(origin);
    await leftovers.removeAll();
    await ctx.res.removeDir(work);
  }

  const pMs = medianOf(runs, "plain", (r) => r.ms);
  const sMs = medianOf(runs, "service", (r) => r.ms);
  const failed = runs.filter((r) => r.side === "service").reduce((a, r) => a + r.failed, 0);
  const ratio = pMs / sMs;
  const rate = (ms: number) => `${fmt(w.urls.length / (ms / 1000))} img/s (${fmt(ms)} ms)`;
  const rows: Row[] = [
    {
      benchmark: "throttled",
      metric: `${w.urls.length} images, ${fmt(w.totalBytes / 1e6)} MB at ${
        fmt(BYTES_PER_SEC / 1e6)
      } MB/s per connection, 32 at once (median of ${ROUNDS}; floor ${fmt(floorMs)} ms)`,
      service: rate(sMs),
      baseline: `plain loop: ${rate(pMs)}`,
      ratio: round(ratio, 3),
      target: `>= ${TARGET}`,
      pass: ratio >= TARGET && failed === 0,
    },
  ];
  return {
    rows,
    settings: {
      images: w.urls.length,
      selection: `every ${EVERY}th ingest fixture`,
      totalBytes: w.totalBytes,
      medianBytes: median(sizes),
      maxBytes: Math.max(...sizes),
      originBytesPerSecPerConnection: BYTES_PER_SEC,
      concurrency: CONCURRENCY,
      pollMs: POLL_MS,
      rounds: ROUNDS,
      service: { WORKER_CONCURRENCY: 32, PER_HOST_CONCURRENCY: CONCURRENCY },
      baseline: "fetch -> arrayBuffer -> Deno.writeFile, 32 in flight, separate Deno process",
    },
    details: { runs, medians: { plainMs: pMs, serviceMs: sMs }, floorMs, ratio },
  };
}

/**
 * Ingest: 2,000 images of mixed formats and sizes from a local origin. The service's time from
 * POST to the job being complete (polled every 20 ms), fresh service and DATA_DIR per run,
 * against two loops that fetch the same URLs with the same concurrency in their own process:
 * the durable loop (the storage work the service must do before indexing, nothing else; the
 * target's baseline) and the plain loop (fetch + writeFile; kept as a reference). Each round
 * runs plain, durable, service in turn. Ratio = service rate / loop rate.
 *
 * No run may pay for another: each run's files are kept until the end (on this VM's journal-less
 * ext4, creating a file right after thousands were deleted scans past every recently deleted
 * inode, which made whichever run came next up to twice as slow), and `sync` flushes a run's
 * dirty pages before the next one starts, outside the timed window.
 */
import type { Ctx, Row } from "./common.ts";
import { serviceEnv } from "./common.ts";
import { type IngestRun, loopRun, medianOf, serviceRun, showRun, workload } from "./ingest_runs.ts";
import { Leftovers, settleDisk } from "../lib/disk.ts";
import { fmt, median, round } from "../lib/stats.ts";

/**
 * Five: this VM's speed drifts within seconds, and a ratio per round
 * (adjacent runs) with a median over five resists that better than three.
 */
const ROUNDS = 5;
const CONCURRENCY = 32;
const POLL_MS = 20;
/** Service rate / durable loop rate. */
const TARGET = 0.8;

export async function ingest(ctx: Ctx) {
  const { manifest } = await ctx.fixtures();
  const origin = await ctx.origin();
  const work = await ctx.res.tempDir("ingest");
  const w = await workload(
    manifest.files.map((f) => `${origin.base}${f.path}`),
    manifest.files.reduce((a, f) => a + f.bytes, 0),
    origin,
    work,
  );
  const n = w.urls.length;
  const leftovers = new Leftovers(ctx.res);

  const loop = async (round: number, mode: "plain" | "durable") => {
    const outDir = `${work}/${mode}-${round}`;
    leftovers.keep(outDir);
    return await loopRun(ctx, w, { side: mode, round, mode, outDir, concurrency: CONCURRENCY });
  };
  const service = async (round: number, tmpfs = false) => {
    const dataDir = tmpfs
      ? await ctx.res.tmpfsDir(`ingest-data-${round}`)
      : await ctx.res.tempDir(`ingest-data-${round}`);
    if (!dataDir) throw new Error("no tmpfs");
    leftovers.keep(dataDir);
    return await serviceRun(ctx, w, {
      side: tmpfs ? "service-tmpfs" : "service",
      round,
      dataDir,
      env: serviceEnv(dataDir, origin.port, { PER_HOST_CONCURRENCY: String(CONCURRENCY) }),
      pollMs: POLL_MS,
      timeoutMs: 180_000,
      // Deno refuses /dev paths without --allow-all, so the tmpfs runs alone get it.
      allowAll: tmpfs,
    });
  };

  const runs: IngestRun[] = [];
  const record = (r: IngestRun) => {
    runs.push(r);
    showRun(ctx, "ingest", r);
  };
  await settleDisk();
  const warm = await loop(0, "plain");
  ctx.log(`  warm-up plain loop (origin JIT, page cache): ${fmt(warm.ms)} ms`);
  for (let round = 1; round <= ROUNDS; round++) {
    record(await loop(round, "plain"));
    record(await loop(round, "durable"));
    record(await service(round));
  }
  // Diagnostic: the service with DATA_DIR (KV file and blobs) on tmpfs, where fsync is ~free.
  const probe = await ctx.res.tmpfsDir("probe");
  const tmpfs = probe !== null;
  if (probe) await ctx.res.removeDir(probe);
  if (tmpfs) {
    for (let round = 1; round <= 2; round++) record(await service(round, true));
  }
  await leftovers.removeAll();
  await ctx.res.removeDir(work);

  const pMs = medianOf(runs, "plain", (r) => r.ms);
  const dMs = medianOf(runs, "durable", (r) => r.ms);
  const sMs = medianOf(runs, "service", (r) => r.ms);
  const tMs = medianOf(runs, "service-tmpfs", (r) => r.ms);
  const cpuPerImage = (side: string) =>
    medianOf(runs, side, (r) => r.cpuMs === null || r.stored === 0 ? null : r.cpuMs / r.stored);
  const sCpu = cpuPerImage("service");
  const failed = runs.filter((r) => r.side.startsWith("service")).reduce((a, r) => a + r.failed, 0);
  const rate = (ms: number) => `${fmt(n / (ms / 1000))} img/s`;
  const rateMb = (ms: number) =>
    `${rate(ms)}, ${fmt(w.totalBytes / 1e6 / (ms / 1000))} MB/s (${fmt(ms)} ms)`;
  // Each round's service run is compared with the durable run just before it.
  const perRound = Array.from({ length: ROUNDS }, (_, i) => {
    const d = runs.find((r) => r.side === "durable" && r.round === i + 1);
    const s = runs.find((r) => r.side === "service" && r.round === i + 1);
    return d && s ? d.ms / s.ms : null;
  }).filter((x): x is number => x !== null);
  const vsDurable = median(perRound);
  const rows: Row[] = [
    {
      benchmark: "ingest",
      metric: `${fmt(n)} images, ${
        fmt(w.totalBytes / 1e6)
      } MB, vs durable loop (median of ${ROUNDS} per-round ratios, ${
        Math.min(...perRound).toFixed(2)
      }-${Math.max(...perRound).toFixed(2)})`,
      service: rateMb(sMs),
      baseline: `durable loop: ${rateMb(dMs)}`,
      ratio: round(vsDurable, 3),
      target: `>= ${TARGET}`,
      pass: vsDurable >= TARGET && failed === 0,
    },
    {
      benchmark: "ingest",
      metric: "reference: vs plain loop (fetch + writeFile, no fsync)",
      service: rate(sMs),
      baseline: `plain loop: ${rateMb(pMs)}`,
      ratio: round(pMs / sMs, 3),
      target: "reference",
      pass: null,
    },
    {
      benchmark: "ingest",
      metric:
        "CPU time per stored image (whole process, /proc utime+stime); ratio = / durable loop's",
      service: fmt(sCpu, "ms"),
      baseline: `plain loop ${fmt(cpuPerImage("plain"), "ms")}, durable loop ${
        fmt(cpuPerImage("durable"), "ms")
      }`,
      // Reported only: absolute CPU time drifts with this VM (the plain loop alone has measured
      // 0.22 to 1.3 ms per image on different days), and "lower than before issue 7" needs the
      // old code run alongside: README "Performance" has that comparison and how it was made.
      ratio: round(sCpu / cpuPerImage("durable"), 2),
      target: "reported",
      pass: null,
    },
    {
      benchmark: "ingest",
      metric: "diagnostic: ceiling = durable loop vs plain loop",
      service: `durable loop: ${rate(dMs)}`,
      baseline: `plain loop: ${rate(pMs)}`,
      ratio: round(pMs / dMs, 3),
      target: "info",
      pass: null,
    },
    {
      benchmark: "ingest",
      metric: "diagnostic: service with DATA_DIR on tmpfs vs plain loop",
      service: tmpfs ? `${rate(tMs)} (${fmt(tMs)} ms)` : "no tmpfs",
      baseline: `plain loop: ${rate(pMs)}`,
      ratio: tmpfs ? round(pMs / tMs, 3) : null,
      target: "info",
      pass: null,
    },
  ];
  const sizes = manifest.files.map((f) => f.bytes);
  return {
    rows,
    settings: {
      images: n,
      totalBytes: w.totalBytes,
      medianBytes: median(sizes),
      maxBytes: Math.max(...sizes),
      formats: manifest.spec.formats,
      concurrency: CONCURRENCY,
      pollMs: POLL_MS,
      rounds: ROUNDS,
      order: "warm-up plain, then per round: plain, durable, service",
      service: { WORKER_CONCURRENCY: 32, PER_HOST_CONCURRENCY: CONCURRENCY, FETCH_RETRIES: 3 },
      diagnostics: "service with DATA_DIR on /dev/shm and --allow-all (2 runs)",
      baselines: {
        durable: "stream + SHA-256 to a temp file, fsync, rename into blobs/<aa>/<sha256>, " +
          "grouped directory fsync; 32 in flight, separate Deno process (the target's baseline)",
        plain: "fetch -> arrayBuffer -> Deno.writeFile, 32 in flight, separate Deno process",
      },
    },
    details: {
      runs,
      medians: {
        plainMs: pMs,
        durableMs: dMs,
        serviceMs: sMs,
        serviceTmpfsMs: tMs,
        serviceCpuMsPerImage: sCpu,
      },
      ratioVsDurable: vsDurable,
      ratioVsPlain: pMs / sMs,
    },
  };
}

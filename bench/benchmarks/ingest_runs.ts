/**
 * One timed ingest of a URL list, by the service or by a baseline loop
 * (bench/children/plain_ingest.ts), as the ingest-style benchmarks (ingest, throttled, rss) run
 * them. Each run is followed by `sync`, outside its timed window, so the next run does not wait
 * for this one's writeback; the caller keeps the run's directory until all its runs are over.
 */
import type { Ctx, JobView } from "./common.ts";
import { failureReasons, submit, waitForJob } from "./common.ts";
import { syncDisk } from "../lib/disk.ts";
import { cpuMs } from "../lib/procfs.ts";
import { type Listening, runDenoJson, spawnService } from "../lib/proc.ts";
import { fmt, median } from "../lib/stats.ts";

/** A URL list on one origin, and the same list as a file (for loops) and a POST body. */
export interface Workload {
  urls: string[];
  totalBytes: number;
  urlsFile: string;
  body: string;
  origin: Listening;
}

export async function workload(
  urls: string[],
  totalBytes: number,
  origin: Listening,
  workDir: string,
): Promise<Workload> {
  const urlsFile = `${workDir}/urls-${crypto.randomUUID()}.json`;
  await Deno.writeTextFile(urlsFile, JSON.stringify(urls));
  return { urls, totalBytes, urlsFile, body: JSON.stringify({ urls }), origin };
}

export interface IngestRun {
  side: string;
  round: number;
  ms: number;
  imagesPerSec: number;
  mbPerSec: number;
  stored: number;
  failed: number;
  /** CPU used by the measured process (service, or the loop) during the run, all threads. */
  cpuMs: number | null;
  originCpuMs: number | null;
  extra?: Record<string, unknown>;
}

const rates = (w: Workload, ms: number) => ({
  imagesPerSec: w.urls.length / (ms / 1000),
  mbPerSec: w.totalBytes / 1e6 / (ms / 1000),
});

const diff = (a: number | null, b: number | null) => a !== null && b !== null ? b - a : null;

interface LoopOut {
  ms: number;
  bytes: number;
  stored: number;
  cpuMs: number;
  errorCount: number;
  errors: string[];
}

/** A baseline loop in its own process, storing into `outDir`; throws unless all were stored. */
export async function loopRun(
  ctx: Ctx,
  w: Workload,
  o: { side: string; round: number; mode: string; outDir: string; concurrency: number },
): Promise<IngestRun> {
  const origin0 = await cpuMs(w.origin.child.pid);
  const r = await runDenoJson<LoopOut>(ctx.res, `${o.side}-${o.round}`, [
    "run",
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-write",
    "bench/children/plain_ingest.ts",
    w.urlsFile,
    o.outDir,
    String(o.concurrency),
    o.mode,
  ], 300_000);
  const originCpuMs = diff(origin0, await cpuMs(w.origin.child.pid));
  await syncDisk();
  if (r.errorCount > 0) throw new Error(`${o.side} loop: ${r.errorCount} errors: ${r.errors}`);
  if (r.bytes !== w.totalBytes) {
    throw new Error(`${o.side} loop stored ${r.bytes} of ${w.totalBytes} bytes`);
  }
  return {
    side: o.side,
    round: o.round,
    ms: r.ms,
    ...rates(w, r.ms),
    stored: r.stored,
    failed: r.errorCount,
    cpuMs: r.cpuMs,
    originCpuMs,
  };
}

export interface ServiceRunOptions {
  side: string;
  round: number;
  dataDir: string;
  env: Record<string, string>;
  pollMs: number;
  timeoutMs: number;
  /** For a DATA_DIR under /dev only; see spawnService. */
  allowAll?: boolean;
  /** Run the warm-up job first (default true; see warmUp). */
  warmUp?: boolean;
  /** Called with the started service before the POST (outside the timed window). */
  before?: (svc: Listening) => Promise<void>;
  /** Called once the job is complete, while the service still runs (outside the window). */
  after?: (svc: Listening, job: JobView) => Promise<void>;
}

/**
 * A fresh service on `dataDir`: time from the POST of the list to the job being complete, polled
 * every `pollMs`, and the CPU the whole service process used meanwhile.
 */
export async function serviceRun(ctx: Ctx, w: Workload, o: ServiceRunOptions): Promise<IngestRun> {
  const svc = await spawnService(ctx.res, `${o.side}-${o.round}`, o.env, {
    allowAll: o.allowAll,
  });
  try {
    if (o.warmUp !== false) await warmUp(svc, w.origin);
    await o.before?.(svc);
    const cpu0 = await cpuMs(svc.child.pid);
    const origin0 = await cpuMs(w.origin.child.pid);
    const t0 = performance.now();
    const { job, ms: postMs } = await submit(svc.base, w.body);
    const done = await waitForJob(svc.base, job.id, o.pollMs, o.timeoutMs);
    const ms = performance.now() - t0;
    const cpu = diff(cpu0, await cpuMs(svc.child.pid));
    const originCpuMs = diff(origin0, await cpuMs(w.origin.child.pid));
    const reasons = done.counts.failed > 0 ? await failureReasons(svc.base, job.id) : {};
    await o.after?.(svc, done);
    return {
      side: o.side,
      round: o.round,
      ms,
      ...rates(w, ms),
      stored: done.counts.complete,
      failed: done.counts.failed,
      cpuMs: cpu,
      originCpuMs,
      extra: {
        jobId: job.id,
        postMs,
        serverMs: done.finished ? Date.parse(done.finished) - Date.parse(done.created) : null,
        failureReasons: reasons,
      },
    };
  } finally {
    await ctx.res.stop(svc);
    await syncDisk();
  }
}

/** Tiny images in the warm-up job: enough for V8 to compile the hot paths. */
const WARM_UP_URLS = 1000;

/**
 * A service runs for days, so its first job after start (interpreted and
 * baseline-compiled JavaScript) says little about how it ingests. Each run
 * first stores WARM_UP_URLS distinct URLs of the origin's tiny PNG, outside
 * the timed window: the whole download path runs, with bytes that appear
 * nowhere in the measured list. Each URL's bytes differ: identical bytes
 * would rename file after file over one blob, and the inodes freed so would
 * slow the measured run's file creation (see bench/README.md).
 */
async function warmUp(svc: Listening, origin: Listening): Promise<void> {
  const tag = crypto.randomUUID();
  const urls = Array.from(
    { length: WARM_UP_URLS },
    (_, i) => `${origin.base}/tiny-unique/warm-up-${tag}/${i}.png`,
  );
  const { job } = await submit(svc.base, JSON.stringify({ urls }));
  const done = await waitForJob(svc.base, job.id, 10, 60_000);
  if (done.counts.complete !== WARM_UP_URLS) {
    throw new Error(`warm-up job: ${JSON.stringify(done.counts)}`);
  }
}

/** One progress line per run. */
export function showRun(ctx: Ctx, label: string, r: IngestRun): void {
  ctx.log(
    `  ${label} ${r.side.padEnd(13)} round ${r.round}: ${fmt(r.ms)} ms, ` +
      `${fmt(r.imagesPerSec)} img/s, ${fmt(r.mbPerSec)} MB/s, cpu ${fmt(r.cpuMs)} ms, ` +
      `origin cpu ${fmt(r.originCpuMs)} ms` + (r.failed ? `, ${r.failed} FAILED` : ""),
  );
}

/** The median of `f` over the runs of one side (nulls left out). */
export function medianOf(
  runs: IngestRun[],
  side: string,
  f: (r: IngestRun) => number | null,
): number {
  return median(runs.filter((r) => r.side === side).map(f).filter((x): x is number => x !== null));
}

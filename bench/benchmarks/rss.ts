/**
 * Peak memory: one service run ingesting the 2,000 ingest images plus one 500 MB PNG (first in
 * the list, so it downloads while the others do), with MAX_IMAGE_BYTES raised to accept it. The
 * figure is VmHWM (peak resident set) of the service's own Deno process from /proc at the end
 * of the run; the large image must be stored intact: the SHA-256 in its metadata, and of the
 * bytes the service serves back, equal the fixture's.
 *
 * The origin (its own process) streams the large file from disk, so it never holds it in memory.
 */
import type { Ctx, JobView, Row } from "./common.ts";
import { getJson, serviceEnv } from "./common.ts";
import { type IngestRun, serviceRun, showRun, workload } from "./ingest_runs.ts";
import { createHash } from "node:crypto";
import { ensureBigFixture } from "../lib/big_fixture.ts";
import { Leftovers, settleDisk } from "../lib/disk.ts";
import { cmdline, memoryBytes, type RssWatch, watchRss } from "../lib/procfs.ts";
import { type Listening, spawnOrigin } from "../lib/proc.ts";
import { fmt } from "../lib/stats.ts";

const CONCURRENCY = 32;
/** Peak resident set of the service process, bytes (MB = 10^6 bytes). */
const TARGET_BYTES = 200e6;
const MAX_IMAGE_BYTES = 600_000_000;
/** A 500 MB body would need 17 MB/s to fit the default 30 s per attempt on a busy machine. */
const FETCH_TIMEOUT_MS = 600_000;
const SAMPLE_MS = 100;

const mb = (bytes: number | undefined) => bytes === undefined ? "-" : `${fmt(bytes / 1e6)} MB`;

/** Throws unless `pid` is a Deno process running the service's main.ts. */
async function checkIsService(pid: number): Promise<string[]> {
  const argv = await cmdline(pid);
  if (!argv || argv[0] !== Deno.execPath() || !argv.includes("main.ts")) {
    throw new Error(`pid ${pid} is not the service's Deno process: ${argv?.join(" ")}`);
  }
  return argv;
}

/** SHA-256 and size of what the service serves for `url`, streamed. */
async function servedSha256(base: string, url: string): Promise<{ sha256: string; bytes: number }> {
  const res = await fetch(`${base}/images/content?url=${encodeURIComponent(url)}`, {
    signal: AbortSignal.timeout(300_000),
  });
  if (!res.ok || !res.body) throw new Error(`GET content: ${res.status}`);
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of res.body) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha256: hash.digest("hex"), bytes };
}

export async function rss(ctx: Ctx) {
  const fixtures = await ctx.fixtures();
  const big = await ensureBigFixture(ctx.res, ctx.log, fixtures);
  const origin = await spawnOrigin(ctx.res, "rss-origin", fixtures.dir, { streamDir: big.dir });
  ctx.log(`origin streaming ${big.name} (${mb(big.bytes)}) from disk at ${origin.base}`);
  const work = await ctx.res.tempDir("rss");
  const bigUrl = `${origin.base}/stream/${big.name}`;
  const files = fixtures.manifest.files;
  const w = await workload(
    [bigUrl, ...files.map((f) => `${origin.base}${f.path}`)],
    big.bytes + files.reduce((a, f) => a + f.bytes, 0),
    origin,
    work,
  );
  const dataDir = await ctx.res.tempDir("rss-data");
  const leftovers = new Leftovers(ctx.res);
  leftovers.keep(dataDir);

  let argv: string[] = [];
  let idle: Record<string, number> | null = null;
  let watch: RssWatch | undefined;
  let end: Record<string, unknown> = {};
  let stored: Record<string, unknown> = {};
  const inspect = async (svc: Listening, job: JobView) => {
    const sampled = await watch!.stop();
    // Read before anything else asks the service for work.
    const status = await memoryBytes(svc.child.pid);
    const rollup = await memoryBytes(svc.child.pid, "smaps_rollup");
    end = { status, smapsRollup: rollup, sampled };
    const meta = await getJson<{ sha256: string; bytes: number; width: number; height: number }>(
      `${svc.base}/images/metadata?url=${encodeURIComponent(bigUrl)}`,
    );
    // Item 0 is the large image: its attempts show whether it needed a retry.
    const items = await getJson<{ items: { state: string; attempts: number }[] }>(
      `${svc.base}/jobs/${job.id}/items?limit=1`,
    );
    const served = await servedSha256(svc.base, bigUrl);
    stored = { metadata: meta, item: items.items[0], served };
  };

  let run: IngestRun;
  try {
    await settleDisk();
    run = await serviceRun(ctx, w, {
      side: "service",
      round: 1,
      dataDir,
      env: serviceEnv(dataDir, origin.port, {
        PER_HOST_CONCURRENCY: String(CONCURRENCY),
        MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES),
        FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS),
      }),
      pollMs: 20,
      timeoutMs: FETCH_TIMEOUT_MS,
      before: async (svc) => {
        argv = await checkIsService(svc.child.pid);
        idle = await memoryBytes(svc.child.pid);
        watch = watchRss(svc.child.pid, SAMPLE_MS);
      },
      after: inspect,
    });
    showRun(ctx, "rss", run);
  } finally {
    await watch?.stop();
    await ctx.res.stop(origin);
    await leftovers.removeAll();
    await ctx.res.removeDir(work);
  }

  const status = end.status as Record<string, number> | null;
  const hwm = status?.VmHWM;
  const meta = stored.metadata as { sha256: string; bytes: number };
  const served = stored.served as { sha256: string; bytes: number };
  const item = stored.item as { state: string; attempts: number } | undefined;
  const intact = meta.sha256 === big.sha256 && meta.bytes === big.bytes &&
    served.sha256 === big.sha256 && served.bytes === big.bytes;
  const allStored = run.failed === 0 && run.stored === w.urls.length;
  ctx.log(
    `  rss: VmHWM ${mb(hwm)} (idle ${mb(idle?.["VmHWM"])}), VmRSS at end ${mb(status?.VmRSS)} ` +
      `(anon ${mb(status?.RssAnon)}, file ${mb(status?.RssFile)}, shmem ${mb(status?.RssShmem)})`,
  );
  const rows: Row[] = [
    {
      benchmark: "rss",
      metric: `peak RSS (VmHWM) of the service, ${files.length} images + one ${
        mb(big.bytes)
      } PNG (${fmt(run.ms / 1000)} s)`,
      service: `${mb(hwm)} (at end ${mb(status?.VmRSS)})`,
      baseline: `idle after start: ${mb(idle?.["VmHWM"])}`,
      ratio: null,
      target: `< ${mb(TARGET_BYTES)}`,
      pass: hwm !== undefined && hwm < TARGET_BYTES && allStored,
    },
    {
      benchmark: "rss",
      metric: "the 500 MB image stored intact (SHA-256 of metadata and of served bytes)",
      service: `${meta.sha256.slice(0, 12)}… ${mb(meta.bytes)}, served ${
        served.sha256.slice(0, 12)
      }…, ${item?.attempts ?? "?"} attempt(s)`,
      baseline: `fixture ${big.sha256.slice(0, 12)}…`,
      ratio: null,
      target: "identical",
      pass: intact,
    },
  ];
  return {
    rows,
    settings: {
      images: w.urls.length,
      totalBytes: w.totalBytes,
      bigImage: big,
      bigFirst: true,
      concurrency: CONCURRENCY,
      service: {
        WORKER_CONCURRENCY: 32,
        PER_HOST_CONCURRENCY: CONCURRENCY,
        MAX_IMAGE_BYTES,
        FETCH_TIMEOUT_MS,
      },
      measuredPid: { argv },
      sampleMs: SAMPLE_MS,
    },
    details: { run, idle, end, stored, intact, allStored },
  };
}

/**
 * Peak memory: a service run ingesting the 2,000 ingest images plus one 500 MB PNG (first in
 * the list, so it downloads while the others do), with MAX_IMAGE_BYTES raised to accept it. The
 * figure is VmHWM (peak resident set) of the service's own Deno process from /proc at the end
 * of the run; the large image must be stored intact: the SHA-256 in its metadata, and of the
 * bytes the service serves back, equal the fixture's. Baseline: a run of the 2,000 alone, with
 * the same settings, just before (what the large image adds).
 *
 * The origin (its own process) streams the large file from disk, so it never holds it in memory.
 */
import type { Ctx, JobView, Row } from "./common.ts";
import { getJson, serviceEnv } from "./common.ts";
import { serviceRun, showRun, type Workload, workload } from "./ingest_runs.ts";
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

interface Memory {
  /** /proc/<pid>/status right after start, before the POST. */
  idle: Record<string, number> | null;
  /** /proc/<pid>/status and smaps_rollup when the job is complete, and the VmRSS samples. */
  status: Record<string, number> | null;
  smapsRollup: Record<string, number> | null;
  sampled: Awaited<ReturnType<RssWatch["stop"]>> | null;
}

export async function rss(ctx: Ctx) {
  const fixtures = await ctx.fixtures();
  const big = await ensureBigFixture(ctx.res, ctx.log, fixtures);
  const origin = await spawnOrigin(ctx.res, "rss-origin", fixtures.dir, { streamDir: big.dir });
  ctx.log(`origin streaming ${big.name} (${mb(big.bytes)}) from disk at ${origin.base}`);
  const work = await ctx.res.tempDir("rss");
  const bigUrl = `${origin.base}/stream/${big.name}`;
  const files = fixtures.manifest.files;
  const smallUrls = files.map((f) => `${origin.base}${f.path}`);
  const smallBytes = files.reduce((a, f) => a + f.bytes, 0);
  const leftovers = new Leftovers(ctx.res);
  let argv: string[] = [];

  /** One service run over `w`; `check` runs once the job is complete, after the memory reads. */
  const measure = async (
    side: string,
    w: Workload,
    check?: (svc: Listening, job: JobView) => Promise<void>,
  ) => {
    const dataDir = await ctx.res.tempDir(`rss-data-${side}`);
    leftovers.keep(dataDir);
    const mem: Memory = { idle: null, status: null, smapsRollup: null, sampled: null };
    let watch: RssWatch | undefined;
    try {
      const run = await serviceRun(ctx, w, {
        side,
        round: 1,
        dataDir,
        env: serviceEnv(dataDir, origin.port, {
          PER_HOST_CONCURRENCY: String(CONCURRENCY),
          MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES),
          FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS),
        }),
        pollMs: 20,
        timeoutMs: FETCH_TIMEOUT_MS,
        // The peak of a freshly started service: a warm-up job's heap would count too, and the
        // figure would depend on how big a warm-up was chosen.
        warmUp: false,
        before: async (svc) => {
          argv = await checkIsService(svc.child.pid);
          mem.idle = await memoryBytes(svc.child.pid);
          watch = watchRss(svc.child.pid, SAMPLE_MS);
        },
        after: async (svc, job) => {
          mem.sampled = await watch!.stop();
          // Read before anything else asks the service for work.
          mem.status = await memoryBytes(svc.child.pid);
          mem.smapsRollup = await memoryBytes(svc.child.pid, "smaps_rollup");
          await check?.(svc, job);
        },
      });
      showRun(ctx, "rss", run);
      const st = mem.status;
      ctx.log(
        `  rss ${side}: VmHWM ${mb(st?.VmHWM)} (idle ${mb(mem.idle?.VmHWM)}), VmRSS at end ` +
          `${mb(st?.VmRSS)} (anon ${mb(st?.RssAnon)}, file ${mb(st?.RssFile)})`,
      );
      return { run, mem };
    } finally {
      await watch?.stop();
    }
  };

  let stored: {
    metadata: { sha256: string; bytes: number };
    item: { state: string; attempts: number } | undefined;
    served: { sha256: string; bytes: number };
  } | undefined;
  const checkBig = async (svc: Listening, job: JobView) => {
    const metadata = await getJson<{ sha256: string; bytes: number }>(
      `${svc.base}/images/metadata?url=${encodeURIComponent(bigUrl)}`,
    );
    // Item 0 is the large image: its attempts show whether it needed a retry.
    const items = await getJson<{ items: { state: string; attempts: number }[] }>(
      `${svc.base}/jobs/${job.id}/items?limit=1`,
    );
    stored = { metadata, item: items.items[0], served: await servedSha256(svc.base, bigUrl) };
  };

  let alone: Awaited<ReturnType<typeof measure>>;
  let withBig: Awaited<ReturnType<typeof measure>>;
  try {
    await settleDisk();
    // The same service settings without the large image: what the 2,000 cost by themselves.
    alone = await measure("small-only", await workload(smallUrls, smallBytes, origin, work));
    withBig = await measure(
      "with-500MB",
      await workload([bigUrl, ...smallUrls], big.bytes + smallBytes, origin, work),
      checkBig,
    );
  } finally {
    await ctx.res.stop(origin);
    await leftovers.removeAll();
    await ctx.res.removeDir(work);
  }

  const hwm = withBig.mem.status?.VmHWM;
  const { metadata, served, item } = stored!;
  const intact = metadata.sha256 === big.sha256 && metadata.bytes === big.bytes &&
    served.sha256 === big.sha256 && served.bytes === big.bytes;
  const allStored = withBig.run.failed === 0 && withBig.run.stored === files.length + 1;
  const rows: Row[] = [
    {
      benchmark: "rss",
      metric: `peak RSS (VmHWM) of the service, ${fmt(files.length)} images + one ${
        mb(big.bytes)
      } PNG (${fmt(withBig.run.ms / 1000)} s)`,
      service: `${mb(hwm)} (idle ${mb(withBig.mem.idle?.VmHWM)})`,
      baseline: `${fmt(files.length)} images alone: ${mb(alone.mem.status?.VmHWM)}`,
      ratio: null,
      target: `< ${mb(TARGET_BYTES)}`,
      pass: hwm !== undefined && hwm < TARGET_BYTES && allStored,
    },
    {
      benchmark: "rss",
      metric: "the 500 MB image stored intact (SHA-256 of metadata and of served bytes)",
      service: `${metadata.sha256.slice(0, 12)}… ${mb(metadata.bytes)}, served ${
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
      images: files.length + 1,
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
      order: "2,000 alone, then 2,000 + the large image (fresh service and DATA_DIR each)",
    },
    details: { alone, withBig, stored, intact, allStored },
  };
}

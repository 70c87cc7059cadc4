/**
 * Retrieval: GET /images/content?url=... of one stored 40 KB image with 32 keep-alive
 * connections (wrk), against a plain Deno.serve in its own process answering the same bytes
 * from memory. Alternating rounds; ratio = service req/s / baseline req/s.
 */
import type { Ctx, Row } from "./common.ts";
import { serviceEnv, submit, waitForJob } from "./common.ts";
import { spawnService, spawnStaticOne } from "../lib/proc.ts";
import { fmt, median, round } from "../lib/stats.ts";
import { runWrk, type WrkResult } from "../lib/wrk.ts";

const ROUNDS = 3;
const WRK = { threads: 2, connections: 32, durationS: 5 };
const TARGET = 0.6;

export async function retrieval(ctx: Ctx) {
  const { dir, manifest } = await ctx.fixtures();
  const origin = await ctx.origin();
  const imageUrl = `${origin.base}${manifest.retrieval.path}`;
  const plain = await spawnStaticOne(
    ctx.res,
    "retrieval-baseline",
    `${dir}${manifest.retrieval.path}`,
  );
  const baselineUrl = `${plain.base}/image.jpg`;
  const dataDir = await ctx.res.tempDir("retrieval-data");
  const svc = await spawnService(ctx.res, "retrieval-service", serviceEnv(dataDir, origin.port));
  try {
    const { job } = await submit(svc.base, JSON.stringify({ urls: [imageUrl] }));
    const done = await waitForJob(svc.base, job.id, 20, 60_000);
    if (done.counts.complete !== 1) {
      throw new Error(`the image was not stored: ${JSON.stringify(done)}`);
    }
    const serviceUrl = `${svc.base}/images/content?url=${encodeURIComponent(imageUrl)}`;

    // Both answer the same bytes.
    const [a, b] = await Promise.all([serviceUrl, baselineUrl].map(async (u) => {
      const res = await fetch(u);
      return new Uint8Array(await res.arrayBuffer());
    }));
    if (
      a.length !== manifest.retrieval.bytes || a.length !== b.length ||
      !a.every((x, i) => x === b[i])
    ) {
      throw new Error("service and baseline bytes differ");
    }

    ctx.log("  warm-up: 1 s of wrk on each");
    await runWrk(baselineUrl, { ...WRK, durationS: 1 });
    await runWrk(serviceUrl, { ...WRK, durationS: 1 });

    const runs: { side: "baseline" | "service"; round: number; wrk: WrkResult }[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      for (const [side, url] of [["baseline", baselineUrl], ["service", serviceUrl]] as const) {
        const w = await runWrk(url, WRK);
        if (w.non2xx > 0 || w.socketErrors > 0) {
          throw new Error(`${side}: ${w.non2xx} non-2xx, ${w.socketErrors} socket errors`);
        }
        runs.push({ side, round: r, wrk: w });
        ctx.log(
          `  retrieval ${side.padEnd(8)} round ${r}: ${fmt(w.reqPerSec)} req/s, ` +
            `p50 ${fmt(w.latencyMs.p50)} ms, p99 ${fmt(w.latencyMs.p99)} ms`,
        );
      }
    }
    const med = (side: string, f: (w: WrkResult) => number) =>
      median(runs.filter((r) => r.side === side).map((r) => f(r.wrk)));
    const sRps = med("service", (w) => w.reqPerSec);
    const bRps = med("baseline", (w) => w.reqPerSec);
    const ratio = sRps / bRps;
    const lat = (side: string) =>
      `p50 ${fmt(med(side, (w) => w.latencyMs.p50))} / p99 ${
        fmt(med(side, (w) => w.latencyMs.p99))
      } ms`;
    const rows: Row[] = [
      {
        benchmark: "retrieval",
        metric: `GET content ${fmt(manifest.retrieval.bytes / 1000)} KB, wrk -t2 -c32 -d5s`,
        service: `${fmt(sRps)} req/s`,
        baseline: `${fmt(bRps)} req/s`,
        ratio: round(ratio, 3),
        target: `>= ${TARGET}`,
        pass: ratio >= TARGET,
      },
      {
        benchmark: "retrieval",
        metric: "latency (wrk)",
        service: lat("service"),
        baseline: lat("baseline"),
        ratio: null,
        target: "info",
        pass: null,
      },
    ];
    return {
      rows,
      settings: {
        imageBytes: manifest.retrieval.bytes,
        wrk: WRK,
        rounds: ROUNDS,
        baseline: "Deno.serve in a separate process answering the bytes from memory",
        service: { WORKER_CONCURRENCY: 32, PER_HOST_CONCURRENCY: 8 },
      },
      details: { runs, medians: { serviceRps: sRps, baselineRps: bRps }, ratio },
    };
  } finally {
    await ctx.res.stop(svc);
    await ctx.res.stop(plain);
    await ctx.res.removeDir(dataDir);
  }
}

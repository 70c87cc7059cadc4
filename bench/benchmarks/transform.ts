/**
 * Transforms (issue 9), on realistic 640x480 JPEGs (about 60 KB) stored through the service:
 *
 * (a) a cached 256 px WebP derivative served with wrk, against the original image served by the
 *     same service in the same run (alternating rounds); target: at least 0.8 of its rate;
 * (b) first-time transforms to a 256 px WebP, one at a time, each of a different source (every
 *     one a miss): p50 and p99 ms;
 * (c) 32 concurrent clients, every request distinct (source x parameters): transforms per
 *     second and p99 ms.
 *
 * Images are generated here (sharp) into a directory the shared origin process serves.
 */
import { makeImage } from "../../tests/support/images.ts";
import type { Ctx, Row } from "./common.ts";
import { serviceEnv, submit, waitForJob } from "./common.ts";
import { spawnOrigin, spawnService } from "../lib/proc.ts";
import { fmt, median, percentile, round } from "../lib/stats.ts";
import { runWrk, type WrkResult } from "../lib/wrk.ts";

const SOURCES = 160;
const SEQUENTIAL = 100;
const CONCURRENCY = 32;
const ROUNDS = 3;
const WRK = { threads: 2, connections: 32, durationS: 5 };
const TARGET = 0.8;

async function makeSources(dir: string): Promise<string[]> {
  await Deno.mkdir(`${dir}/img`, { recursive: true });
  await Deno.mkdir(`${dir}/r`, { recursive: true });
  await Deno.writeFile(`${dir}/tiny.png`, await makeImage("png", { width: 1, height: 1 }));
  const paths: string[] = [];
  for (let i = 0; i < SOURCES; i++) {
    const jpeg = await makeImage("jpeg", {
      width: 640,
      height: 480,
      targetBytes: 60_000,
      seed: 9000 + i,
    });
    const name = `t${String(i).padStart(3, "0")}.jpg`;
    await Deno.writeFile(`${dir}/img/${name}`, jpeg);
    paths.push(`/img/${name}`);
  }
  return paths;
}

async function timedGet(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  const body = await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 200 || body.byteLength === 0) {
    throw new Error(`GET ${url}: ${res.status} ${new TextDecoder().decode(body).slice(0, 300)}`);
  }
  return ms;
}

export async function transform(ctx: Ctx) {
  const srcDir = await ctx.res.tempDir("transform-sources");
  ctx.log(`  generating ${SOURCES} 640x480 JPEGs (~60 KB) ...`);
  const paths = await makeSources(srcDir);
  const origin = await spawnOrigin(ctx.res, "transform-origin", srcDir);
  const dataDir = await ctx.res.tempDir("transform-data");
  const svc = await spawnService(ctx.res, "transform-service", serviceEnv(dataDir, origin.port));
  try {
    const urls = paths.map((p) => `${origin.base}${p}`);
    const { job } = await submit(svc.base, JSON.stringify({ urls }));
    const done = await waitForJob(svc.base, job.id, 50, 120_000);
    if (done.counts.complete !== SOURCES) {
      throw new Error(`sources not all stored: ${JSON.stringify(done.counts)}`);
    }
    const content = (i: number, query = "") =>
      `${svc.base}/images/content?url=${encodeURIComponent(urls[i])}${query}`;

    // (a) cached derivative vs original, same service, same run.
    const originalUrl = content(SOURCES - 1);
    const derivativeUrl = content(SOURCES - 1, "&w=256&format=webp");
    const first = await fetch(derivativeUrl);
    const firstBytes = (await first.arrayBuffer()).byteLength;
    if (first.status !== 200 || first.headers.get("content-type") !== "image/webp") {
      throw new Error(`derivative: ${first.status} ${first.headers.get("content-type")}`);
    }
    ctx.log(`  derivative: ${firstBytes} bytes WebP; warm-up: 1 s of wrk on each`);
    await runWrk(originalUrl, { ...WRK, durationS: 1 });
    await runWrk(derivativeUrl, { ...WRK, durationS: 1 });
    const runs: { side: "original" | "derivative"; round: number; wrk: WrkResult }[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      for (
        const [side, url] of [["original", originalUrl], ["derivative", derivativeUrl]] as const
      ) {
        const w = await runWrk(url, WRK);
        if (w.non2xx > 0 || w.socketErrors > 0) {
          throw new Error(`${side}: ${w.non2xx} non-2xx, ${w.socketErrors} socket errors`);
        }
        runs.push({ side, round: r, wrk: w });
        ctx.log(
          `  ${side.padEnd(10)} round ${r}: ${fmt(w.reqPerSec)} req/s, ` +
            `p50 ${fmt(w.latencyMs.p50)} ms, p99 ${fmt(w.latencyMs.p99)} ms`,
        );
      }
    }
    const med = (side: string) =>
      median(runs.filter((r) => r.side === side).map((r) => r.wrk.reqPerSec));
    const ratio = med("derivative") / med("original");

    // (b) first-time transforms, one at a time, each source once.
    const sequential: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      sequential.push(await timedGet(content(i, "&w=256&format=webp")));
    }
    ctx.log(
      `  first-time 640->256 WebP: p50 ${fmt(percentile(sequential, 50))} ms, ` +
        `p99 ${fmt(percentile(sequential, 99))} ms`,
    );

    // (c) 32 clients, all requests distinct (parameters not used above).
    const queue = [
      ...urls.map((_, i) => content(i, "&w=320&format=webp")),
      ...urls.map((_, i) => content(i, "&w=200&format=jpeg")),
    ];
    const concurrent: number[] = [];
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < queue.length) concurrent.push(await timedGet(queue[next++]));
    }));
    const seconds = (performance.now() - t0) / 1000;
    const perSecond = queue.length / seconds;
    ctx.log(
      `  ${CONCURRENCY} concurrent distinct: ${fmt(perSecond)} transforms/s, ` +
        `p50 ${fmt(percentile(concurrent, 50))} ms, p99 ${fmt(percentile(concurrent, 99))} ms`,
    );

    const rows: Row[] = [
      {
        benchmark: "transform",
        metric: `GET cached 256 px WebP (${fmt(firstBytes / 1000)} KB) vs original, wrk -c32`,
        service: `${fmt(med("derivative"))} req/s`,
        baseline: `${fmt(med("original"))} req/s (original)`,
        ratio: round(ratio, 3),
        target: `>= ${TARGET}`,
        pass: ratio >= TARGET,
      },
      {
        benchmark: "transform",
        metric: `first-time 640x480 JPEG -> 256 px WebP, sequential, n=${SEQUENTIAL}`,
        service: `p50 ${fmt(percentile(sequential, 50))} / p99 ${
          fmt(percentile(sequential, 99))
        } ms`,
        baseline: "-",
        ratio: null,
        target: "info",
        pass: null,
      },
      {
        benchmark: "transform",
        metric: `${CONCURRENCY} concurrent distinct transforms, n=${queue.length}`,
        service: `${fmt(perSecond)} /s, p50 ${fmt(percentile(concurrent, 50))} / p99 ${
          fmt(percentile(concurrent, 99))
        } ms`,
        baseline: "-",
        ratio: null,
        target: "info",
        pass: null,
      },
    ];
    return {
      rows,
      settings: {
        sources: { count: SOURCES, width: 640, height: 480, targetBytes: 60_000 },
        wrk: WRK,
        rounds: ROUNDS,
        concurrency: CONCURRENCY,
        service: "defaults (TRANSFORM_CONCURRENCY = cores, TRANSFORM_QUEUE = 64)",
      },
      details: { runs, ratio, sequentialMs: sequential, concurrentMs: concurrent, seconds },
    };
  } finally {
    await ctx.res.stop(svc);
    await ctx.res.stop(origin);
    await ctx.res.removeDir(dataDir);
    await ctx.res.removeDir(srcDir);
  }
}

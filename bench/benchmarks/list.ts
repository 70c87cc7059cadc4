/**
 * Listing: GET /images?limit=100 with 100,000 images indexed versus 1,000, first page and a
 * middle page (by cursor). The index is written straight into each service's KV file before it
 * starts. Both services run at once (idle when not measured) and are measured alternately:
 * sequential requests for latency, then wrk for throughput. Ratio = 100k / 1k (slowdown).
 */
import type { Ctx, Row } from "./common.ts";
import { getJson, serviceEnv } from "./common.ts";
import { encodeCursor } from "../../services/store/page.ts";
import { type Listening, runDenoJson, spawnService } from "../lib/proc.ts";
import { fmt, median, percentile, round } from "../lib/stats.ts";
import { runWrk, type WrkResult } from "../lib/wrk.ts";

const SIZES = [1_000, 100_000];
const LIMIT = 100;
const SEQUENTIAL = 300;
const ROUNDS = 2;
const WRK = { threads: 2, connections: 32, durationS: 3 };
const TARGET = 2;

interface Page {
  items: { url: string }[];
  nextCursor: string | null;
}

async function sequential(url: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
    times.push(performance.now() - t0);
  }
  return times;
}

export async function list(ctx: Ctx) {
  const services: {
    size: number;
    svc: Listening;
    dataDir: string;
    fillMs: number;
    pages: Record<string, string>;
  }[] = [];
  try {
    for (const size of SIZES) {
      const dataDir = await ctx.res.tempDir(`list-${size}`);
      const fill = await runDenoJson<{ ms: number; midSeq: string }>(ctx.res, `fill-kv-${size}`, [
        "run",
        "--unstable-kv",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "bench/children/fill_kv.ts",
        `${dataDir}/kv.sqlite3`,
        String(size),
      ], 180_000);
      ctx.log(`  filled KV with ${size.toLocaleString("en-US")} images in ${fmt(fill.ms)} ms`);
      const svc = await spawnService(ctx.res, `list-service-${size}`, serviceEnv(dataDir, null));
      const pages = {
        first: `${svc.base}/images?limit=${LIMIT}`,
        middle: `${svc.base}/images?limit=${LIMIT}&cursor=${encodeCursor(fill.midSeq)}`,
      };
      // The pages are what they should be.
      const first = await getJson<Page>(pages.first);
      const middle = await getJson<Page>(pages.middle);
      const mid = String(size / 2).padStart(6, "0");
      if (
        first.items.length !== LIMIT || !first.nextCursor ||
        !first.items[0].url.endsWith("/000000.png")
      ) {
        throw new Error(`unexpected first page for ${size}`);
      }
      if (middle.items.length !== LIMIT || !middle.items[0].url.endsWith(`/${mid}.png`)) {
        throw new Error(`unexpected middle page for ${size}: ${middle.items[0]?.url}`);
      }
      services.push({ size, svc, dataDir, fillMs: fill.ms, pages });
    }

    // Warm-up.
    for (const s of services) {
      for (const url of Object.values(s.pages)) await sequential(url, 30);
    }
    const latencies: Record<string, number[]> = {};
    const wrks: Record<string, WrkResult[]> = {};
    for (let r = 1; r <= ROUNDS; r++) {
      for (const s of services) {
        for (const [page, url] of Object.entries(s.pages)) {
          const key = `${s.size}/${page}`;
          (latencies[key] ??= []).push(...await sequential(url, SEQUENTIAL / ROUNDS));
          const w = await runWrk(url, WRK);
          if (w.non2xx > 0 || w.socketErrors > 0) throw new Error(`${key}: errors under wrk`);
          (wrks[key] ??= []).push(w);
          ctx.log(
            `  list ${key.padEnd(13)} round ${r}: sequential p50 ${
              fmt(median(latencies[key]))
            } ms; ` +
              `wrk ${fmt(w.reqPerSec)} req/s, p50 ${fmt(w.latencyMs.p50)} ms`,
          );
        }
      }
    }

    const rows: Row[] = [];
    const summary: Record<string, unknown> = {};
    const [small, large] = SIZES;
    for (const page of ["first", "middle"]) {
      const s = latencies[`${small}/${page}`];
      const l = latencies[`${large}/${page}`];
      const sRps = median(wrks[`${small}/${page}`].map((w) => w.reqPerSec));
      const lRps = median(wrks[`${large}/${page}`].map((w) => w.reqPerSec));
      const latRatio = median(l) / median(s);
      const rpsRatio = sRps / lRps;
      summary[page] = {
        sequentialMs: {
          [small]: { p50: median(s), p95: percentile(s, 95) },
          [large]: { p50: median(l), p95: percentile(l, 95) },
        },
        wrkReqPerSec: { [small]: sRps, [large]: lRps },
        latencyRatio: latRatio,
        throughputRatio: rpsRatio,
      };
      rows.push({
        benchmark: "list",
        metric: `${page} page, sequential latency p50 (p95)`,
        service: `100k: ${fmt(median(l))} (${fmt(percentile(l, 95))}) ms`,
        baseline: `1k: ${fmt(median(s))} (${fmt(percentile(s, 95))}) ms`,
        ratio: round(latRatio, 3),
        target: `<= ${TARGET}x`,
        pass: latRatio <= TARGET,
      }, {
        benchmark: "list",
        metric: `${page} page, wrk -t2 -c32 -d3s (slowdown = 1k/100k)`,
        service: `100k: ${fmt(lRps)} req/s`,
        baseline: `1k: ${fmt(sRps)} req/s`,
        ratio: round(rpsRatio, 3),
        target: `<= ${TARGET}x`,
        pass: rpsRatio <= TARGET,
      });
    }
    return {
      rows,
      settings: {
        sizes: SIZES,
        limit: LIMIT,
        sequentialRequests: SEQUENTIAL,
        wrk: WRK,
        rounds: ROUNDS,
        fill: "raw KV batches (500 records, 1000 mutations per commit) before the service starts",
        service: { WORKER_CONCURRENCY: 32, PER_HOST_CONCURRENCY: 8 },
      },
      details: {
        fillMs: Object.fromEntries(services.map((s) => [s.size, s.fillMs])),
        summary,
        wrk: wrks,
      },
    };
  } finally {
    for (const s of services) {
      await ctx.res.stop(s.svc);
      await ctx.res.removeDir(s.dataDir);
    }
  }
}

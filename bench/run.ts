/**
 * `deno task bench [ingest] [throttled] [rss] [retrieval] [submit] [list] [transform]`: runs the benchmarks
 * (all when none is named), prints a table and writes bench/.out/results.json. See
 * bench/README.md.
 *
 * Everything runs on this machine and talks to 127.0.0.1 only: the service, the origin and the
 * baselines are separate Deno processes started and stopped here.
 */
import type { BenchResult, Ctx, Row } from "./benchmarks/common.ts";
import { ingest } from "./benchmarks/ingest.ts";
import { list } from "./benchmarks/list.ts";
import { retrieval } from "./benchmarks/retrieval.ts";
import { rss } from "./benchmarks/rss.ts";
import { submitBench } from "./benchmarks/submit.ts";
import { throttled } from "./benchmarks/throttled.ts";
import { transform } from "./benchmarks/transform.ts";
import { ensureFixtures, type FixtureManifest } from "./lib/fixtures.ts";
import { machineInfo } from "./lib/machine.ts";
import { type Listening, LOG_DIR, OUT, Resources, spawnOrigin } from "./lib/proc.ts";
import { checkWrk } from "./lib/wrk.ts";

const BENCHMARKS: Record<string, (ctx: Ctx) => Promise<BenchResult>> = {
  ingest,
  throttled,
  rss,
  retrieval,
  submit: submitBench,
  list,
  transform,
};

function usage(): never {
  console.log(`usage: deno task bench [${Object.keys(BENCHMARKS).join("|")}]...`);
  Deno.exit(2);
}

const names = Deno.args.length ? Deno.args : Object.keys(BENCHMARKS);
if (names.some((n) => !(n in BENCHMARKS))) usage();

const started = new Date();
const t0 = performance.now();
const log = (line: string) => {
  const s = ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
  console.log(`[${s}s] ${line}`);
};

// Logs of this run only.
await Deno.remove(LOG_DIR, { recursive: true }).catch(() => {});
const res = new Resources();
let interrupted = false;
const onSignal = (signal: Deno.Signal) => () => {
  if (interrupted) return;
  interrupted = true;
  console.error(`\n${signal}: stopping children and removing temp dirs`);
  res.cleanup().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));

let fixtures: Promise<{ dir: string; manifest: FixtureManifest }> | undefined;
let origin: Promise<Listening> | undefined;
const ctx: Ctx = {
  res,
  log,
  fixtures: () => fixtures ??= ensureFixtures(res, log),
  origin: () =>
    origin ??= ctx.fixtures().then(async ({ dir }) => {
      const o = await spawnOrigin(res, "origin", dir);
      log(`origin (separate Deno.serve process) at ${o.base}`);
      return o;
    }),
};

const results: Record<string, BenchResult | { error: string }> = {};
let failures = 0;
try {
  const wrk = await checkWrk();
  const machine = await machineInfo(wrk);
  log(
    `machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}`,
  );
  log(`deno ${machine.deno} (v8 ${machine.v8}, typescript ${machine.typescript}); ${wrk}`);
  log(`benchmarks: ${names.join(", ")}`);
  for (const name of names) {
    log(`--- ${name}`);
    try {
      results[name] = await BENCHMARKS[name](ctx);
    } catch (err) {
      failures++;
      const message = (err as Error).stack ?? String(err);
      results[name] = { error: message };
      log(`${name} FAILED: ${message}`);
    }
  }

  const rows = Object.values(results).flatMap((r) => "rows" in r ? r.rows : []);
  console.log("");
  console.log(table(rows));
  for (const [name, r] of Object.entries(results)) {
    if ("error" in r) console.log(`${name}: ERROR ${r.error.split("\n")[0]}`);
  }
  const fx = fixtures ? (await fixtures).manifest : null;
  await Deno.mkdir(OUT, { recursive: true });
  await Deno.writeTextFile(
    `${OUT}/results.json`,
    JSON.stringify(
      {
        started: started.toISOString(),
        durationS: (performance.now() - t0) / 1000,
        command: `deno task bench ${Deno.args.join(" ")}`.trim(),
        machine,
        fixtures: fx ? { spec: fx.spec, count: fx.files.length } : null,
        rows,
        results,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`\nwrote ${OUT}/results.json (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
} finally {
  await res.cleanup();
}
Deno.exit(failures ? 1 : 0);

function table(rows: Row[]): string {
  const head = ["benchmark", "metric", "service", "baseline", "ratio", "target", "result"];
  const body = rows.map((r) => [
    r.benchmark,
    r.metric,
    r.service,
    r.baseline,
    r.ratio === null ? "-" : String(r.ratio),
    r.target,
    r.pass === null ? "" : r.pass ? "PASS" : "MISS",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)]
    .join("\n");
}

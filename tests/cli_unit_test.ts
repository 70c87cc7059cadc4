/** The CLI's pure parts: arguments, list format, idempotency key, rate/ETA, progress and summary text. */
import assert from "node:assert/strict";
import { parseArgs } from "../cli/args.ts";
import { formatDuration, formatRate, progressLine } from "../cli/format.ts";
import { detectFormat, idempotencyKey } from "../cli/input.ts";
import { RateMeter } from "../cli/meter.ts";
import { plainLines } from "../cli/progress.ts";
import { resultsKind } from "../cli/results.ts";
import { exitCodeFor, failureLine, FailureLog, formatSummary } from "../cli/summary.ts";
import type { JobSummary } from "../cli/types.ts";

function args(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const parsed = parseArgs(argv, { out: (t) => void out.push(t), err: (t) => void err.push(t) });
  return { parsed, out: out.join(""), err: err.join("") };
}

Deno.test("parseArgs() reads the file and options, with the default server", () => {
  const { parsed } = args(["list.txt"]);
  assert.ok("run" in parsed);
  assert.equal(parsed.run.input, "list.txt");
  assert.equal(parsed.run.server, "http://127.0.0.1:8000");
  assert.equal(parsed.run.apiKey, undefined);
  assert.equal(parsed.run.refresh, false);
  assert.equal(parsed.run.intervalMs, 5000);

  const full = args([
    "-",
    "--server",
    "http://127.0.0.1:9000/api/",
    "--key",
    "s3cret",
    "--out",
    "r.ndjson",
    "--format",
    "csv",
    "--refresh",
    "--interval",
    "0.25",
  ]).parsed;
  assert.ok("run" in full);
  assert.deepEqual(full.run, {
    input: "-",
    server: "http://127.0.0.1:9000/api",
    apiKey: "s3cret",
    out: "r.ndjson",
    format: "csv",
    refresh: true,
    intervalMs: 250,
  });
});

Deno.test("parseArgs() maps usage errors to exit 2 with a message, and --help to exit 0", () => {
  for (
    const argv of [
      [],
      ["a.txt", "--bogus"],
      ["a.txt", "--server", "ftp://x"],
      ["a.txt", "--server", "not a url"],
      ["a.txt", "--format", "xml"],
      ["a.txt", "--interval", "0"],
      ["a.txt", "b.txt"],
    ]
  ) {
    const { parsed, err } = args(argv);
    assert.deepEqual(parsed, { exit: 2 }, argv.join(" "));
    assert.match(err, /error/, argv.join(" "));
  }
  const help = args(["--help"]);
  assert.deepEqual(help.parsed, { exit: 0 });
  assert.match(help.out, /--server <url>/);
  assert.match(help.out, /--out <file>/);
});

Deno.test("detectFormat() trusts the file name, else tells a table from a URL list", () => {
  const csv = "sku,url\nA1,http://x/a.png\n";
  const text = "http://x/a.png\nhttp://x/b.png\n";
  assert.equal(detectFormat({ bytes: new Uint8Array(), name: "list.CSV" }, text), "csv");
  assert.equal(detectFormat({ bytes: new Uint8Array(), name: "urls.txt" }, csv), "text");
  const noName = (t: string) => detectFormat({ bytes: new Uint8Array() }, t);
  assert.equal(noName(csv), "csv");
  assert.equal(noName('"source_url"\nhttp://x/a.png\n'), "csv", "a lone named column");
  assert.equal(noName("http://x/a.png,1\nhttp://x/b.png,2\n"), "csv", "rows of equal width");
  assert.equal(noName(text), "text");
  assert.equal(noName("# comment, with comma\n" + text), "text", "comments are not rows");
  assert.equal(noName("http://x/a,b.png\nhttp://x/c.png\n"), "text", "one URL with a comma");
  assert.equal(noName('"http://x/a,b.png",1\nhttp://x/c.png,2\n'), "csv", "quoted commas");
  assert.equal(noName(""), "text");
});

Deno.test("idempotencyKey() is stable for the same request and differs when anything in it does", () => {
  const body = new TextEncoder().encode("http://x/a.png\n");
  const key = idempotencyKey("http://127.0.0.1:8000", "text", false, body);
  assert.match(key, /^cli-[0-9a-f]{64}$/);
  assert.equal(idempotencyKey("http://127.0.0.1:8000", "text", false, body.slice()), key);
  const others = [
    idempotencyKey("http://127.0.0.1:8001", "text", false, body),
    idempotencyKey("http://127.0.0.1:8000", "csv", false, body),
    idempotencyKey("http://127.0.0.1:8000", "text", true, body),
    idempotencyKey(
      "http://127.0.0.1:8000",
      "text",
      false,
      new TextEncoder().encode("http://x/b.png\n"),
    ),
  ];
  assert.equal(new Set([key, ...others]).size, 5);
});

Deno.test("RateMeter gives the recent pace and the time left, and nothing before a second has passed", () => {
  const m = new RateMeter(10_000, 1_000);
  assert.deepEqual(m.record(0, 1000, 0), { done: 0, total: 1000 });
  assert.deepEqual(m.record(5, 1000, 500), { done: 5, total: 1000 });
  const r = m.record(20, 1000, 2000);
  assert.equal(r.rate, 10);
  assert.equal(r.etaSeconds, 98);
  // A fast start drops out of the window: the rate follows the current pace.
  m.record(500, 1000, 3000);
  m.record(510, 1000, 20_000);
  const later = m.record(520, 1000, 25_000);
  assert.ok(later.rate! < 5, `rate ${later.rate}`);
  const finished = m.record(1000, 1000, 26_000);
  assert.equal(finished.etaSeconds, 0);
  const quick = new RateMeter(10_000, 1_000);
  quick.record(0, 6, 0);
  assert.deepEqual(quick.record(6, 6, 500), { done: 6, total: 6, rate: 12, etaSeconds: 0 });
  const stalled = new RateMeter();
  stalled.record(3, 10, 0);
  assert.equal(stalled.record(3, 10, 2000).etaSeconds, undefined, "no ETA at a standstill");
});

Deno.test("formatDuration(), formatRate() and progressLine() read well", () => {
  assert.equal(formatDuration(7.4), "7s");
  assert.equal(formatDuration(185), "3m 05s");
  assert.equal(formatDuration(7380), "2h 03m");
  assert.equal(formatRate(undefined), "-/s");
  assert.equal(formatRate(12.345), "12.3/s");
  assert.equal(formatRate(1234.4), "1234/s");
  assert.equal(
    progressLine({ done: 1234, total: 100_000, rate: 85.34, etaSeconds: 1160 }, 12),
    "progress: 1,234/100,000 done (1.2%), 12 failed, 85.3/s, ETA 19m 20s",
  );
  assert.equal(
    progressLine({ done: 0, total: 3 }, 0),
    "progress: 0/3 done (0%), 0 failed, -/s, ETA -",
  );
});

function job(complete: number, failed: number, total = 3, status = "complete"): JobSummary {
  return {
    id: "J1",
    status: status as JobSummary["status"],
    total,
    counts: { pending: total - complete - failed, complete, failed },
  };
}

Deno.test("plainLines() prints at once, then only changed counts per interval, and a last line", async () => {
  const lines: string[] = [];
  const view = plainLines((l) => void lines.push(l), 40);
  view.update(job(0, 0, 3, "pending"));
  assert.equal(lines.length, 1, "the first line is not held back");
  view.update(job(1, 0, 3, "in-progress"));
  view.update(job(2, 0, 3, "in-progress"));
  assert.equal(lines.length, 1, "within an interval, updates wait");
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(lines.length, 2, "one line for the interval, none while nothing changes");
  view.update(job(2, 1));
  view.stop();
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(lines.map((l) => l.split(",")[0]), [
    "progress: 0/3 done (0%)",
    "progress: 2/3 done (66.7%)",
    "progress: 3/3 done (100%)",
  ]);
});

Deno.test("exitCodeFor() is 0 only when every URL was stored", () => {
  assert.equal(exitCodeFor(job(3, 0)), 0);
  assert.equal(exitCodeFor(job(2, 1)), 1);
  assert.equal(exitCodeFor(job(1, 0, 3, "cancelled")), 1);
});

Deno.test("formatSummary() counts failures by reason once each and lists the first ones", () => {
  const log = new FailureLog();
  for (let i = 0; i < 14; i++) {
    log.add({ index: i, url: `http://x/${i}`, reason: i % 2 ? "http_404" : "timeout" });
  }
  log.add({ index: 3, url: "http://x/3", reason: "http_404" }); // resent after a resume
  log.add({ index: 20, url: "nope", reason: "invalid_url", detail: "line 21: nope", line: 21 });
  const text = formatSummary({
    job: { ...job(5, 15, 20), id: "J7" },
    failures: log,
    elapsedSeconds: 65,
    resultsPath: "out.csv",
  });
  const lines = text.split("\n");
  assert.equal(lines[0], "Job J7 complete in 1m 05s: 5 of 20 stored, 15 failed.");
  assert.equal(lines[1], "Failed by reason: http_404 7, timeout 7, invalid_url 1");
  assert.equal(lines[2], "  #1: http://x/0 timeout");
  assert.equal(lines.filter((l) => l.startsWith("  #")).length, 10);
  assert.ok(lines.includes("  ... 5 more in out.csv"));
  assert.equal(lines.at(-1), "Results written to out.csv");

  const line = new FailureLog();
  line.add({ index: 1, url: "nope", reason: "invalid_url", detail: "line 2: bad", line: 2 });
  assert.match(
    formatSummary({ job: job(2, 1), failures: line, elapsedSeconds: 1 }),
    /\n {2}line 2: nope invalid_url \(bad\)$/,
  );
  assert.equal(
    formatSummary({ job: job(3, 0), failures: new FailureLog(), elapsedSeconds: 2 }),
    "Job J1 complete in 2s: 3 of 3 stored, 0 failed.",
  );
  // The service's own times win over how long this run watched (a re-run may attach late).
  const timed = {
    ...job(3, 0),
    created: "2026-12-03T10:00:00.000Z",
    finished: "2026-12-03T10:02:03.400Z",
  };
  assert.match(
    formatSummary({ job: timed, failures: new FailureLog(), elapsedSeconds: 1 }),
    /complete in 2m 03s:/,
  );
});

Deno.test("resultsKind() picks NDJSON only for .ndjson names", () => {
  assert.equal(resultsKind("out.csv"), "csv");
  assert.equal(resultsKind("OUT.NDJSON"), "ndjson");
  assert.equal(resultsKind("results"), "csv");
});

Deno.test("failureLine() shows the input line from the event, else from the detail, else the position", () => {
  const base = { index: 4, url: "u", reason: "invalid_url" };
  assert.equal(
    failureLine({ ...base, line: 9, detail: "line 9: not a URL" }),
    "line 9: u invalid_url (not a URL)",
  );
  assert.equal(
    failureLine({ ...base, detail: "line 6: not a URL" }),
    "line 6: u invalid_url (not a URL)",
  );
  assert.equal(
    failureLine({ ...base, reason: "http_404", detail: "answered 404" }),
    "#5: u http_404 (answered 404)",
  );
  assert.equal(failureLine({ ...base, reason: "timeout" }), "#5: u timeout");
});

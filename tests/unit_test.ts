import assert from "node:assert/strict";
import { parseRange } from "../routes/range.ts";
import { ConfigError, parseConfig, SETTING_NAMES } from "../services/config.ts";
import { FAILURE_REASONS } from "../services/fetch/reasons.ts";
import { isUlid, ulid } from "../services/store/ids.ts";
import { decodeCursor, encodeCursor } from "../services/store/page.ts";
import { ListError, type ListFormat, ListParser } from "../services/intake/list_parser.ts";
import { DroppedTask, Scheduler } from "../services/worker/scheduler.ts";
import { ByteBudget } from "../services/blobs/byte_budget.ts";
import { Admission } from "../services/worker/admission.ts";
import { BlobCache } from "../services/blobs/blob_cache.ts";

Deno.test("parseRange() reads single ranges and ignores what it does not serve", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange("bytes=90-", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=90-500", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-10", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-500", 100), { start: 0, end: 99 });
  assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=-0", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=5-1", 100), null);
  assert.equal(parseRange("bytes=0-1,5-6", 100), null);
  assert.equal(parseRange("items=0-1", 100), null);
  assert.equal(parseRange(undefined, 100), null);
});

Deno.test("parseConfig() applies defaults and rejects bad values with readable lines", () => {
  const c = parseConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.hostname, "127.0.0.1");
  assert.equal(c.kvPath, "./data/kv.sqlite3");
  assert.equal(c.workerConcurrency, 32);
  assert.equal(c.fetch.maxImageBytes, 50 * 1024 * 1024);
  assert.equal(c.fetch.totalTimeoutMs, 30_000);
  assert.equal(c.fetch.policy.allowPrivateNetworks, false);
  assert.equal(c.kvIsRemote, false);
  assert.equal(parseConfig({ KV_PATH: "https://kv.example.com/db" }).kvIsRemote, true);
  assert.equal(parseConfig({ DATA_DIR: "/srv/x/" }).kvPath, "/srv/x/kv.sqlite3");
  assert.equal(parseConfig({ PORT: "" }).port, 8000, "empty means unset");
  assert.throws(
    () => parseConfig({ PORT: "eighty" }),
    (e: Error) => e instanceof ConfigError && /PORT/.test(e.message),
  );
  assert.throws(() => parseConfig({ WORKER_CONCURRENCY: "0" }), /WORKER_CONCURRENCY/);
  assert.throws(() => parseConfig({ ALLOW_PRIVATE_NETWORKS: "maybe" }), /ALLOW_PRIVATE_NETWORKS/);
  assert.throws(() => parseConfig({ FETCH_ALLOW_HOSTS: "300.1.1.1/99" }), /FETCH_ALLOW_HOSTS/);
});

Deno.test("ulid() is monotonic within a millisecond and well-formed", () => {
  const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
  assert.ok(ids.every(isUlid));
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(ulid(1_700_000_000_001) > ids.at(-1)!);
});

Deno.test("cursors round-trip and foreign cursors are refused", () => {
  assert.equal(
    decodeCursor(encodeCursor("01KAQ4Z3T7V6B6XG5N3W2R8M9C")!),
    "01KAQ4Z3T7V6B6XG5N3W2R8M9C",
  );
  assert.equal(decodeCursor(encodeCursor(42)!), 42);
  assert.equal(encodeCursor(null), null);
  assert.equal(decodeCursor("bogus"), undefined);
  assert.equal(decodeCursor(btoa("{}")), undefined);
});

Deno.test("URL lists: lines skip blanks and comments, CSV picks the url column, repeats count once", () => {
  const read = (format: ListFormat, text: string) => {
    const parser = new ListParser(format);
    parser.push(new TextEncoder().encode(text));
    return parser.end();
  };
  const urls = (text: string, format: ListFormat = "text") =>
    read(format, text).entries.map((e) => e.url);
  assert.deepEqual(urls("http://a.test/\r\n\n# c\n http://b.test/ \n"), [
    "http://a.test/",
    "http://b.test/",
  ]);
  assert.deepEqual(urls("http://x.test/\nhttp://y.test/\n", "csv"), [
    "http://x.test/",
    "http://y.test/",
  ]);
  const named = read("csv", 'name,source_url\n"q ""x""",http://u1.test/\nb,http://u2.test/');
  assert.deepEqual(named.entries.map((e) => e.url), ["http://u1.test/", "http://u2.test/"]);
  assert.deepEqual(named.entries[0].columns, ['q "x"', "http://u1.test/"]);
  assert.deepEqual(named.csvHeader, ["name", "source_url"]);
  assert.deepEqual(urls("", "csv"), []);
  assert.throws(() => read("csv", '"open'), ListError);
  const repeated = read(
    "text",
    ["b", "a", "b", "c", "a"].map((h) => `http://${h}.test/`).join("\n"),
  );
  assert.deepEqual(repeated.entries.map((e) => e.url), [
    "http://b.test/",
    "http://a.test/",
    "http://c.test/",
  ]);
  assert.deepEqual(repeated.repeats, [{ line: 3, index: 0 }, { line: 5, index: 1 }]);
});

Deno.test("Scheduler never exceeds its global or per-host limits and serves hosts in turn", async () => {
  const s = new Scheduler(4, 2);
  const running = new Map<string, number>();
  let peak = 0;
  const peakPerHost = new Map<string, number>();
  const order: string[] = [];
  const task = (host: string) => async () => {
    running.set(host, (running.get(host) ?? 0) + 1);
    const total = [...running.values()].reduce((a, b) => a + b, 0);
    peak = Math.max(peak, total);
    peakPerHost.set(host, Math.max(peakPerHost.get(host) ?? 0, running.get(host)!));
    order.push(host);
    await new Promise((r) => setTimeout(r, 5));
    running.set(host, running.get(host)! - 1);
  };
  for (let i = 0; i < 20; i++) s.submit("slow", task("slow"));
  for (let i = 0; i < 5; i++) s.submit("fast", task("fast"));
  await s.idle();
  assert.equal(peak, 4);
  assert.equal(peakPerHost.get("slow"), 2);
  assert.equal(peakPerHost.get("fast"), 2);
  // The host queued second starts long before the first host's backlog is done.
  assert.ok(order.indexOf("fast") < 4, `fast started at ${order.indexOf("fast")}`);
  assert.equal(order.length, 25);
});

Deno.test("Scheduler.dropQueued rejects waiting run() calls; the running task still ends cleanly", async () => {
  const s = new Scheduler(1, 1);
  let finish!: () => void;
  const running = s.run("h", () => new Promise<string>((r) => finish = () => r("done")));
  const waiting = s.run("h", () => Promise.resolve("never"));
  await new Promise((r) => setTimeout(r, 0));
  s.dropQueued();
  await assert.rejects(waiting, DroppedTask);
  finish();
  assert.equal(await running, "done");
  await s.idle();
  // Still usable afterwards.
  assert.equal(await s.run("h", () => Promise.resolve(7)), 7);
});

Deno.test("Admission parks items of a busy host and keeps admitting other hosts", async () => {
  const a = new Admission({ maxAhead: 3, maxAheadPerHost: 2, maxParked: 2 });
  const started: string[] = [];
  const leaves = new Map<string, () => void>();
  const dropped: string[] = [];
  const item = (name: string) => ({
    start: (leave: () => void) => {
      started.push(name);
      leaves.set(name, leave);
    },
    drop: () => dropped.push(name),
  });
  assert.equal(await a.admit("slow", item("s1")), true);
  assert.equal(await a.admit("slow", item("s2")), true);
  assert.equal(await a.admit("slow", item("s3")), true); // parked: slow has 2 ahead
  assert.equal(await a.admit("fast", item("f1")), true); // not held back by s3
  assert.deepEqual(started, ["s1", "s2", "f1"]);
  assert.equal(a.parked, 1);
  // The overall limit (3) is reached: the next admit waits for a place.
  let admitted = false;
  const waiting = a.admit("fast", item("f2")).then((ok) => admitted = ok);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(admitted, false);
  leaves.get("s1")!(); // a slow place opens: the parked s3 takes it, f2 still waits
  leaves.get("s1")!(); // leaving twice counts once
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(started, ["s1", "s2", "f1", "s3"]);
  assert.equal(admitted, false);
  leaves.get("f1")!();
  await waiting;
  assert.deepEqual(started, ["s1", "s2", "f1", "s3", "f2"]);
  assert.equal(a.ahead, 3);
  // Close drops what is parked and refuses the rest.
  leaves.get("f2")!();
  assert.equal(await a.admit("slow", item("s4")), true); // parked: slow still has 2 ahead
  assert.equal(a.parked, 1);
  assert.deepEqual(dropped, []);
  a.close();
  assert.deepEqual(dropped, ["s4"]);
  assert.equal(a.parked, 0);
  assert.equal(await a.admit("fast", item("f3")), false);
  assert.deepEqual(started, ["s1", "s2", "f1", "s3", "f2"]);
});

Deno.test("ByteBudget waits at its ceiling, wakes on give, and lets one oversized take through", async () => {
  const b = new ByteBudget(100);
  await b.take(60);
  let second = false;
  const p = b.take(60).then(() => second = true);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(second, false, "waits while 60 + 60 > 100");
  b.give(60);
  await p;
  assert.equal(b.used, 60);
  b.give(60);
  await b.take(500); // alone, larger than the ceiling: not stuck forever
  assert.equal(b.used, 500);
});

Deno.test("BlobCache keeps at most maxBytes, evicting the least recently used", () => {
  const cache = new BlobCache(10, 6);
  const b = (n: number) => new Uint8Array(n);
  assert.equal(cache.accepts(7), false);
  cache.set("a", b(4));
  cache.set("b", b(4));
  assert.ok(cache.get("a")); // a is now the most recent
  cache.set("c", b(4)); // 12 > 10: b goes
  assert.equal(cache.get("b"), undefined);
  assert.ok(cache.get("a"));
  assert.ok(cache.get("c"));
  assert.equal(cache.size, 8);
  cache.set("big", b(7));
  assert.equal(cache.get("big"), undefined, "items over maxItemBytes are not kept");
  cache.delete("a");
  assert.equal(cache.size, 4);
});

Deno.test("the README documents every setting and every failure reason", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  for (const name of SETTING_NAMES) assert.ok(readme.includes(`\`${name}\``), `${name} in README`);
  for (const reason of FAILURE_REASONS) {
    assert.ok(readme.includes(`\`${reason}\``), `${reason} in README`);
  }
});

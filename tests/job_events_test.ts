import { serviceDeps } from "../routes/deps.ts";
import assert from "node:assert/strict";
import { createApp } from "../routes/app.ts";
import { jobView } from "../routes/views.ts";
import { JobEvents } from "../services/jobs/job_events.ts";
import { JobReads } from "../services/store/job_reads.ts";
import { startTestService, type TestService } from "./support/app.ts";
import { submit } from "./support/http.ts";
import { startImageOrigin, waitFor } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import { readSse, serveApp, type SseEvent } from "./support/sse.ts";
import { spawnService } from "./support/subprocess.ts";

const events = (base: string, id: string, lastEventId?: string, signal?: AbortSignal) =>
  fetch(`${base}/jobs/${id}/events`, {
    headers: lastEventId ? { "last-event-id": lastEventId } : {},
    signal,
  });

const ofKind = (list: SseEvent[], kind: string) => list.filter((e) => e.event === kind);

/** The summary as `GET /jobs/{id}` gives it, without the small-job lists. */
async function summaryOf(t: TestService, id: string) {
  const { pending: _p, complete: _c, failed: _f, ...summary } =
    await (await t.app.request(`/jobs/${id}`)).json();
  return summary;
}

Deno.test("events: retry, progress at once, one failed event per failed URL, then end and close", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "0" });
  const server = serveApp(t.app.fetch);
  try {
    const png = await makeImage("png", { width: 4, height: 4 });
    const urls: string[] = [];
    for (let i = 0; i < 6; i++) {
      origin.set(`/ok${i}.png`, { body: png, delayMs: 250 * (i + 1) });
      origin.set(`/missing${i}`, { status: 404, body: "no", delayMs: 250 * (i + 1) });
      urls.push(origin.url(`/ok${i}.png`), origin.url(`/missing${i}`));
    }
    const { id } = await submit(t.app, { urls });
    const res = await events(server.base, id);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    assert.equal(res.headers.get("cache-control"), "no-cache");
    const read = await readSse(res);

    assert.equal(read.retry, 2000);
    assert.ok(read.closed, "the server closes the stream after the end event");
    const all = read.events;
    assert.ok(
      all.every((e) => typeof e.id === "string" && e.id.length > 0),
      "every event has an id",
    );
    assert.equal(new Set(all.map((e) => e.id)).size, all.length, "ids are distinct");
    assert.equal(all[0].event, "progress");
    assert.equal(all.at(-1)!.event, "end");
    assert.equal(ofKind(all, "end").length, 1);

    const failed = ofKind(all, "failed").map((e) => e.data);
    assert.deepEqual(
      failed.map((f) => f.url).sort(),
      urls.filter((u) => u.includes("missing")).sort(),
    );
    for (const f of failed) {
      assert.equal(f.reason, "http_404");
      assert.equal(typeof f.detail, "string");
      assert.equal(urls[f.index], f.url);
    }

    const progress = ofKind(all, "progress").map((e) => e.data);
    assert.deepEqual(Object.keys(progress[0]).sort(), ["counts", "status", "total"]);
    for (let i = 1; i < progress.length; i++) {
      const [a, b] = [progress[i - 1].counts, progress[i].counts];
      assert.ok(b.complete + b.failed >= a.complete + a.failed, "counts only grow");
      assert.notDeepEqual([progress[i - 1].status, a], [progress[i].status, b], "sent on change");
    }
    assert.ok(progress.length >= 2, "counts changed while the stream was open");
    assert.deepEqual(all.at(-1)!.data, await summaryOf(t, id));
    assert.deepEqual(all.at(-1)!.data.counts, { pending: 0, complete: 6, failed: 6 });
  } finally {
    await server.close();
    await t.close();
    await origin.close();
  }
});

Deno.test("events: at most about 4 progress events a second while counts change fast", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: origin.allowRule,
    WORKER_CONCURRENCY: "2",
  });
  const server = serveApp(t.app.fetch);
  try {
    const urls: string[] = [];
    for (let i = 0; i < 60; i++) {
      origin.set(`/i${i}.gif`, {
        body: await makeImage("gif", { width: 2 + i, height: 2, seed: i }),
        delayMs: 25,
      });
      urls.push(origin.url(`/i${i}.gif`));
    }
    const { id } = await submit(t.app, { urls });
    const started = Date.now();
    const read = await readSse(await events(server.base, id));
    const seconds = (Date.now() - started) / 1000;
    const progress = ofKind(read.events, "progress");
    assert.ok(seconds > 0.7, `the job took a while (${seconds} s)`);
    assert.ok(progress.length >= 2, "progress was reported along the way");
    assert.ok(
      progress.length <= Math.ceil(seconds * 4) + 2,
      `${progress.length} progress events in ${seconds} s`,
    );
    assert.equal(ofKind(read.events, "end")[0].data.counts.complete, 60);
  } finally {
    await server.close();
    await t.close();
    await origin.close();
  }
});

Deno.test("events: a resume with Last-Event-ID sends nothing twice, misses nothing, keeps the end", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "0" });
  const server = serveApp(t.app.fetch);
  try {
    // Failures come one after another, in an order unlike the list's.
    const delays = [900, 0, 600, 300, 1200];
    const urls = delays.map((ms, i) => {
      origin.set(`/fail${i}`, { status: 410, body: "gone", delayMs: ms });
      return origin.url(`/fail${i}`);
    });
    const { id } = await submit(t.app, { urls });

    const controller = new AbortController();
    const first = await readSse(
      await events(server.base, id, undefined, controller.signal),
      (r) => ofKind(r.events, "failed").length === 2,
    );
    controller.abort();
    const lastId = first.events.at(-1)!.id!;
    assert.deepEqual(ofKind(first.events, "failed").map((e) => e.data.url), [urls[1], urls[3]]);

    const rest = await readSse(await events(server.base, id, lastId));
    assert.ok(rest.closed);
    const failedAfter = ofKind(rest.events, "failed").map((e) => e.data.url);
    assert.deepEqual(failedAfter, [urls[2], urls[0], urls[4]], "in the order they failed");
    assert.equal(rest.events.at(-1)!.event, "end");
    assert.deepEqual(rest.events.at(-1)!.data.counts, { pending: 0, complete: 0, failed: 5 });

    // Resuming from any event of a whole run gives exactly what followed it.
    const whole = (await readSse(await events(server.base, id))).events;
    assert.equal(ofKind(whole, "failed").length, 5);
    for (let i = 0; i < whole.length - 1; i++) {
      const resumed = (await readSse(await events(server.base, id, whole[i].id))).events;
      const expected = whole.slice(i + 1).filter((e) => e.event !== "progress");
      assert.deepEqual(
        resumed.filter((e) => e.event !== "progress"),
        expected,
        `after event ${i} (${whole[i].event})`,
      );
    }

    // After the end, a reconnection is told to stop.
    const again = await events(server.base, id, whole.at(-1)!.id);
    assert.equal(again.status, 204);
    assert.equal(await again.text(), "");
  } finally {
    await server.close();
    await t.close();
    await origin.close();
  }
});

Deno.test("events: a quiet stream sends `: ping` heartbeats; bad ids and jobs are problems", async () => {
  const t = await startTestService({ EVENTS_HEARTBEAT_MS: "100" }, { startWorker: false });
  const server = serveApp(t.app.fetch);
  try {
    const { id } = await submit(t.app, { urls: ["https://images.example.com/never.png"] });
    const controller = new AbortController();
    const started = Date.now();
    const read = await readSse(
      await events(server.base, id, undefined, controller.signal),
      (r) => r.comments.length >= 3,
    );
    controller.abort();
    assert.deepEqual(read.comments, ["ping", "ping", "ping"]);
    assert.ok(Date.now() - started >= 250, "pings are spaced by the heartbeat");
    assert.deepEqual(ofKind(read.events, "progress").map((e) => e.data), [
      { status: "pending", total: 1, counts: { pending: 1, complete: 0, failed: 0 } },
    ]);

    for (const bad of ["nonsense", "1.2.3", "0.-1.z.0.0", "0.5.p.0.0"]) {
      const res = await events(server.base, id, bad);
      assert.equal(res.status, 400, bad);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      await res.body?.cancel();
    }
    for (const missing of ["01KAQ4Z3T7V6B6XG5N3W2R8M9C", "not-a-job"]) {
      const res = await events(server.base, missing);
      assert.equal(res.status, 404);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      await res.body?.cancel();
    }
  } finally {
    await server.close();
    await t.close();
  }
});

Deno.test("events: closing the client's connection stops the server's stream and its watch", async () => {
  const t = await startTestService({}, { startWorker: false });
  const streams = new JobEvents(new JobReads(t.service.kv, t.service.jobs.keys), {
    heartbeatMs: 60_000,
    pollMs: 50,
    minIntervalMs: 10,
    summarize: jobView,
  });
  const app = createApp({
    ...serviceDeps(t.service),
    healthy: undefined,
    jobEvents: streams,
  });
  const server = serveApp(app.fetch);
  const clients = [new AbortController(), new AbortController()];
  let socket: Deno.TcpConn | undefined;
  try {
    const { id } = await submit(app, { urls: ["https://images.example.com/never.png"] });
    for (const c of clients) {
      const res = await events(server.base, id, undefined, c.signal);
      await readSse(res, (r) => r.events.length > 0, { keepOpen: true });
    }
    // A bare TCP client that will simply close its socket.
    socket = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(server.base).port) });
    await socket.write(
      new TextEncoder().encode(`GET /jobs/${id}/events HTTP/1.1\r\nHost: x\r\n\r\n`),
    );
    const head = new Uint8Array(4096);
    assert.ok((await socket.read(head))! > 0);
    assert.match(new TextDecoder().decode(head), /^HTTP\/1\.1 200/);
    await waitFor(() => streams.open === 3, "three open streams", 2_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(streams.open, 3, "streams stay open while their clients are there");

    clients[0].abort();
    clients[1].abort();
    await waitFor(() => streams.open === 1, "the aborted clients' streams closed", 3_000);
    socket.close();
    socket = undefined;
    await waitFor(() => streams.open === 0, "the closed socket's stream closed", 3_000);
  } finally {
    // A stream left open would keep the server's graceful shutdown waiting.
    for (const c of clients) c.abort();
    socket?.close();
    await server.close();
    await t.close();
  }
});

Deno.test("events: Deno's EventSource follows a job to its end and stops at the 204", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "0" });
  const seen: { lastEventId: string | null; status: number }[] = [];
  const server = serveApp(async (req) => {
    const res = await t.app.fetch(req);
    seen.push({ lastEventId: req.headers.get("last-event-id"), status: res.status });
    return res;
  });
  let source: EventSource | undefined;
  try {
    origin.set("/a.png", { body: await makeImage("png", { width: 5, height: 5 }), delayMs: 300 });
    origin.set("/b", { status: 500, body: "oops", delayMs: 300 });
    const urls = [origin.url("/a.png"), origin.url("/b")];
    const { id } = await submit(t.app, { urls });
    source = new EventSource(`${server.base}/jobs/${id}/events`);
    const received: { type: string; id: string; data: any }[] = [];
    for (const type of ["progress", "failed", "end"]) {
      source.addEventListener(type, (e) => {
        const m = e as MessageEvent;
        received.push({ type, id: m.lastEventId, data: JSON.parse(m.data) });
      });
    }
    // After `end` the server closes; EventSource reconnects (2 s later) and
    // the 204 it gets then closes it for good.
    await waitFor(() => source!.readyState === EventSource.CLOSED, "EventSource closed", 10_000);
    const types = received.map((r) => r.type);
    assert.equal(types[0], "progress");
    assert.equal(types.at(-1), "end");
    assert.deepEqual(received.filter((r) => r.type === "failed").map((r) => r.data.url), [urls[1]]);
    assert.equal(received.at(-1)!.data.status, "complete");
    assert.deepEqual(seen, [
      { lastEventId: null, status: 200 },
      { lastEventId: received.at(-1)!.id, status: 204 },
    ]);
  } finally {
    source?.close();
    await server.close();
    await t.close();
    await origin.close();
  }
});

const curlPath = await new Deno.Command("sh", { args: ["-c", "command -v curl"], stdout: "piped" })
  .output().then((o) => (o.success ? new TextDecoder().decode(o.stdout).trim() : null))
  .catch(() => null);

Deno.test({
  name: "events: curl -N prints the events as they come and exits at the end",
  ignore: !curlPath,
  fn: async () => {
    const origin = startImageOrigin();
    const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule, FETCH_RETRIES: "0" });
    const server = serveApp(t.app.fetch);
    try {
      origin.set("/slow.png", {
        body: await makeImage("png", { width: 6, height: 6 }),
        delayMs: 500,
      });
      origin.set("/missing", { status: 404, body: "no" });
      const { id } = await submit(t.app, {
        urls: [origin.url("/missing"), origin.url("/slow.png")],
      });
      const curl = new Deno.Command(curlPath!, {
        args: ["-sN", "--max-time", "20", `${server.base}/jobs/${id}/events`],
        stdout: "piped",
      }).spawn();
      // The first event arrives while the job is still running (not all at the end).
      const reader = curl.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("event: progress")) text += (await reader.read()).value ?? "";
      const job = await (await t.app.request(`/jobs/${id}`)).json();
      assert.notEqual(job.status, "complete", "curl showed progress before the job ended");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      assert.equal((await curl.status).code, 0, "curl ends when the server closes the stream");
      assert.match(text, /^retry: 2000\n\n/);
      assert.match(
        text,
        /event: failed\ndata: \{"index":0,"url":"[^"]+\/missing","reason":"http_404"/,
      );
      assert.match(text, /event: end\ndata: \{"id":"[^"]+","status":"complete"/);
    } finally {
      await server.close();
      await t.close();
      await origin.close();
    }
  },
});

Deno.test({
  name:
    "events: a job processed by a second service process on the same KV file reaches the first's stream; SIGTERM ends open streams",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const origin = startImageOrigin();
    const dir = await Deno.makeTempDir({ prefix: "image-ingest-events-" });
    const kvPath = `${dir}/kv.sqlite3`;
    // This process serves the stream and downloads nothing.
    const t = await startTestService({ KV_PATH: kvPath, EVENTS_POLL_MS: "100" }, {
      startWorker: false,
    });
    const server = serveApp(t.app.fetch);
    const other = await spawnService({
      DATA_DIR: `${dir}/other`,
      KV_PATH: kvPath,
      FETCH_ALLOW_HOSTS: origin.allowRule,
      FETCH_RETRIES: "0",
      SWEEP_INTERVAL_MS: "200",
      SHUTDOWN_GRACE_MS: "100",
      EVENTS_HEARTBEAT_MS: "60000",
    });
    try {
      const png = await makeImage("png", { width: 7, height: 7 });
      const urls = [0, 1, 2, 3].map((i) => {
        origin.set(`/p${i}.png`, { body: png, delayMs: 150 * i });
        return origin.url(`/p${i}.png`);
      });
      origin.set("/nope", { status: 404, body: "no", delayMs: 200 });
      urls.push(origin.url("/nope"));
      const { id } = await submit(t.app, { urls });
      // KV watch does not see the other process's writes; the stream's poll does.
      const read = await readSse(
        await events(server.base, id, undefined, AbortSignal.timeout(15_000)),
      );
      assert.ok(read.closed);
      assert.equal(read.events.at(-1)!.event, "end");
      assert.deepEqual(read.events.at(-1)!.data.counts, { pending: 0, complete: 4, failed: 1 });
      assert.deepEqual(ofKind(read.events, "failed").map((e) => e.data.url), [urls[4]]);
      assert.ok(origin.totalHits() >= 5, "the other process did the downloads");

      // The other process stops promptly even with a stream open on it.
      origin.set("/forever.png", { body: png, delayMs: 3_000 });
      const slow = await submit(t.app, { urls: [origin.url("/forever.png")] });
      const open = await fetch(`${other.base}/jobs/${slow.id}/events`);
      assert.equal(open.status, 200);
      const reading = readSse(open);
      await new Promise((r) => setTimeout(r, 300));
      other.child.kill("SIGTERM");
      const status = await other.exited;
      assert.equal(status.code, 0);
      const cut = await reading;
      assert.ok(cut.closed, "the stream was closed, not left hanging");
      assert.ok(!cut.events.some((e) => e.event === "end"), "no end: the job goes on elsewhere");
    } finally {
      try {
        other.child.kill("SIGKILL");
      } catch { /* already gone */ }
      await other.exited;
      await server.close();
      await t.close();
      await origin.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("events: invalid lines of a large list reach the stream as its items are written", async () => {
  const t = await startTestService({ EVENTS_POLL_MS: "50" }, { startWorker: false });
  const server = serveApp(t.app.fetch);
  const client = new AbortController();
  let guard: ReturnType<typeof setTimeout> | undefined;
  try {
    const lines = Array.from(
      { length: 12_000 },
      (_, i) => i % 1000 === 999 ? `bad line ${i}` : `https://images.example.com/l/${i}.png`,
    );
    const res = await t.app.request("/images", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: lines.join("\n"),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const { id } = await res.json();
    // The stream opens before the items exist; writing them changes no counter.
    guard = setTimeout(() => client.abort(), 10_000);
    const stream = await events(server.base, id, undefined, client.signal);
    const reading = readSse(stream, (r) => ofKind(r.events, "failed").length === 12);
    await new Promise((r) => setTimeout(r, 200));
    await t.service.intake.materialise(id);
    const read = await reading;
    client.abort();
    const failed = ofKind(read.events, "failed").map((e) => e.data);
    assert.deepEqual(
      failed.map((f) => f.line),
      Array.from({ length: 12 }, (_, i) => i * 1000 + 1000),
    );
    assert.ok(failed.every((f) => f.reason === "invalid_url" && f.url.startsWith("bad line")));
    assert.deepEqual(ofKind(read.events, "progress")[0].data.counts, {
      pending: 11_988,
      complete: 0,
      failed: 12,
    });
  } finally {
    clearTimeout(guard);
    client.abort();
    await server.close();
    await t.close();
  }
});

Deno.test("events: a cancelled job's stream reports the cancelled URLs and ends with status cancelled", async () => {
  const origin = startImageOrigin();
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: origin.allowRule,
    WORKER_CONCURRENCY: "1",
    PER_HOST_CONCURRENCY: "1",
  });
  const server = serveApp(t.app.fetch);
  try {
    const png = await makeImage("png", { width: 4, height: 3 });
    const urls = [0, 1, 2, 3, 4].map((i) => {
      origin.set(`/c${i}.png`, { body: png, delayMs: 400 });
      return origin.url(`/c${i}.png`);
    });
    const { id } = await submit(t.app, { urls });
    const res = await events(server.base, id);
    const reading = readSse(res);
    await waitFor(() => origin.totalHits() > 0, "the first download to start");
    const cancel = await t.app.request(`/jobs/${id}`, { method: "DELETE" });
    assert.equal(cancel.status, 202);
    const read = await reading;
    assert.ok(read.closed);
    const end = read.events.at(-1)!;
    assert.equal(end.event, "end");
    assert.equal(end.data.status, "cancelled");
    const cancelled = ofKind(read.events, "failed").filter((e) => e.data.reason === "cancelled");
    assert.equal(cancelled.length, end.data.counts.failed);
    assert.ok(cancelled.length >= 3, `${cancelled.length} URLs never started`);
    assert.equal(end.data.counts.complete + end.data.counts.failed, 5);
  } finally {
    await server.close();
    await t.close();
    await origin.close();
  }
});

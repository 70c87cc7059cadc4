/**
 * The CLI's job follower against scripted event streams served on loopback:
 * what it does with drops, resumes, silence, a missing events route and a
 * server that is gone. (The real service's stream is covered in cli_test.ts.)
 */
import assert from "node:assert/strict";
import { ServiceClient } from "../cli/api.ts";
import { ConnectionError, ServiceError } from "../cli/errors.ts";
import { followJob } from "../cli/follow.ts";
import type { FailedItem, ProgressData } from "../cli/types.ts";

const SUMMARY = {
  id: "J1",
  status: "complete",
  total: 3,
  counts: { pending: 0, complete: 2, failed: 1 },
};

function progress(complete: number, failed: number, status = "in-progress") {
  return JSON.stringify({
    status,
    total: 3,
    counts: { pending: 3 - complete - failed, complete, failed },
  });
}

/** An SSE answer made of `chunks`; closes after the last unless `hold` (then stays open). */
function sse(chunks: string[], hold = false): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of chunks) c.enqueue(enc.encode(chunk));
      if (!hold) c.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

interface Seen {
  path: string;
  lastEventId: string | null;
  authorization: string | null;
}

function serve(handler: (req: Request, n: number) => Response | Promise<Response>) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push({
      path: new URL(req.url).pathname + new URL(req.url).search,
      lastEventId: req.headers.get("last-event-id"),
      authorization: req.headers.get("authorization"),
    });
    return handler(req, seen.length);
  });
  return {
    seen,
    client: (key?: string) => new ServiceClient(`http://127.0.0.1:${server.addr.port}`, key),
    close: () => server.shutdown(),
  };
}

function recorder() {
  const progress: ProgressData[] = [];
  const failed: FailedItem[] = [];
  return {
    progress,
    failed,
    handlers: {
      progress: (p: ProgressData) => void progress.push(p),
      failed: (f: FailedItem) => void failed.push(f),
    },
  };
}

Deno.test("followJob() reads progress, failed and end events, split anywhere, and stops at the end", async () => {
  const text = "retry: 2000\n\n" +
    `id: 1\nevent: progress\ndata: ${progress(0, 0, "pending")}\n\n` +
    ": ping\n\n" +
    `id: 2\nevent: progress\ndata: ${progress(1, 0)}\n\n` +
    `id: 3\nevent: failed\ndata: {"index":2,"url":"x","reason":"invalid_url","detail":"line 3: x","line":3}\n\n` +
    `id: 4\nevent: end\ndata: ${JSON.stringify(SUMMARY)}\n\n`;
  // Cut the recorded text into odd pieces: fields and lines must survive any split.
  const chunks = text.match(/[\s\S]{1,7}/g)!;
  const srv = serve(() => sse(chunks, true));
  try {
    const rec = recorder();
    const result = await followJob(srv.client("k1"), "J1", rec.handlers);
    assert.equal(result.via, "events");
    assert.deepEqual(result.job, SUMMARY);
    assert.deepEqual(rec.progress.map((p) => p.counts.complete), [0, 1, 2]);
    assert.deepEqual(rec.failed, [
      { index: 2, url: "x", reason: "invalid_url", detail: "line 3: x", line: 3 },
    ]);
    assert.equal(srv.seen.length, 1, "no reconnect after the end, though the stream stayed open");
    assert.equal(srv.seen[0].path, "/jobs/J1/events");
    assert.equal(srv.seen[0].authorization, "Bearer k1");
  } finally {
    await srv.close();
  }
});

Deno.test("followJob() reconnects a dropped stream with Last-Event-ID after the server's retry delay", async () => {
  const times: number[] = [];
  const srv = serve((_req, n) => {
    times.push(Date.now());
    if (n === 1) {
      return sse([
        "retry: 150\n\n",
        `id: 7\nevent: progress\ndata: ${progress(1, 0)}\n\n`,
        // Cut mid-event: this half must not count.
        "id: 8\nevent: progress\ndata: {",
      ]);
    }
    return sse([
      `id: 9\nevent: failed\ndata: {"index":1,"url":"u","reason":"http_404"}\n\n`,
      `id: 10\nevent: end\ndata: ${JSON.stringify(SUMMARY)}\n\n`,
    ]);
  });
  try {
    const rec = recorder();
    const result = await followJob(srv.client(), "J1", rec.handlers);
    assert.deepEqual(result.job, SUMMARY);
    assert.deepEqual(srv.seen.map((s) => s.lastEventId), [null, "7"]);
    assert.ok(times[1] - times[0] >= 140, `waited the retry delay (${times[1] - times[0]} ms)`);
    assert.deepEqual(rec.failed.map((f) => f.url), ["u"]);
    assert.deepEqual(rec.progress.map((p) => p.counts.complete), [1, 2]);
  } finally {
    await srv.close();
  }
});

Deno.test("followJob() reopens a stream that went silent (no events, no heartbeat)", async () => {
  const srv = serve((_req, n) =>
    n === 1
      ? sse(["retry: 10\n\n", `id: 1\nevent: progress\ndata: ${progress(0, 0)}\n\n`], true)
      : sse([`id: 2\nevent: end\ndata: ${JSON.stringify(SUMMARY)}\n\n`])
  );
  try {
    const result = await followJob(srv.client(), "J1", recorder().handlers, { idleMs: 200 });
    assert.equal(result.job.status, "complete");
    assert.deepEqual(srv.seen.map((s) => s.lastEventId), [null, "1"]);
  } finally {
    await srv.close();
  }
});

Deno.test("followJob() polls GET /jobs/{id} when the service has no events route", async () => {
  let polls = 0;
  const srv = serve((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/jobs/J1") {
      polls++;
      const done = polls >= 3;
      return Response.json({
        id: "J1",
        status: done ? "complete" : "in-progress",
        total: 3,
        counts: done ? SUMMARY.counts : { pending: 3 - polls, complete: polls, failed: 0 },
      });
    }
    if (path === "/jobs/J1/items") {
      return Response.json({
        items: [{ index: 1, url: "u", state: "failed", reason: "http_404", attempts: 1 }],
        nextCursor: null,
      });
    }
    return Response.json({ title: "Not found", status: 404, detail: "no route" }, { status: 404 });
  });
  try {
    const rec = recorder();
    const result = await followJob(srv.client(), "J1", rec.handlers, { pollMs: 20 });
    assert.equal(result.via, "polling");
    assert.deepEqual(result.job.counts, SUMMARY.counts);
    assert.deepEqual(rec.progress.map((p) => p.counts.complete), [1, 2, 2]);
    assert.deepEqual(rec.failed.map((f) => [f.url, f.reason]), [["u", "http_404"]]);
    assert.ok(srv.seen.some((s) => s.path === "/jobs/J1/items?state=failed&limit=100"));
  } finally {
    await srv.close();
  }
});

Deno.test("followJob() reports an unknown job with the service's problem detail", async () => {
  const srv = serve(() =>
    new Response(JSON.stringify({ title: "Not found", status: 404, detail: "No job J9." }), {
      status: 404,
      headers: { "content-type": "application/problem+json" },
    })
  );
  try {
    await assert.rejects(
      followJob(srv.client(), "J9", recorder().handlers),
      (err) => err instanceof ServiceError && err.status === 404 && /No job J9\./.test(err.message),
    );
  } finally {
    await srv.close();
  }
});

Deno.test("followJob() gives up with a ConnectionError once the server has been gone too long", async () => {
  const srv = serve(() =>
    sse(["retry: 30\n\n", `id: 1\nevent: progress\ndata: ${progress(0, 0)}\n\n`])
  );
  const client = srv.client();
  const rec = recorder();
  const following = followJob(client, "J1", rec.handlers, { giveUpMs: 300 });
  // Let it connect once, then take the server away for good.
  while (srv.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
  await srv.close();
  const started = Date.now();
  await assert.rejects(following, ConnectionError);
  assert.ok(Date.now() - started < 3000, "gave up soon after the window");
  assert.equal(rec.progress.length >= 1, true);
});

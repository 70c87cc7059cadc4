import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { DEFAULT_POLICY } from "../services/net/address_policy.ts";
import type { Connector } from "../services/net/connector.ts";
import { PinnedConnector } from "../services/net/connector.ts";
import { parseHostRules } from "../services/net/host_rules.ts";
import type { Resolver } from "../services/net/resolver.ts";
import { keys } from "../services/store/kv_keys.ts";
import { WebhookDeliverer } from "../services/webhooks/deliverer.ts";
import type { WebhookDelivery } from "../services/webhooks/outbox.ts";
import { WebhookSigner } from "../services/webhooks/signing.ts";
import { startTestService } from "./support/app.ts";
import { submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import { serveOrigin } from "./support/origin.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

interface Received {
  headers: Record<string, string>;
  body: string;
}

/** A loopback webhook receiver answering with `statuses` in turn (then 200). */
function startReceiver(statuses: number[] = []) {
  const received: Received[] = [];
  const origin = serveOrigin(async (req) => {
    received.push({ headers: Object.fromEntries(req.headers), body: await req.text() });
    const status = statuses.shift() ?? 200;
    return new Response(status === 200 ? "ok" : "try later", { status });
  });
  return { origin, received };
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("signatures verify with the Standard Webhooks reference library (whsec_ and plain secrets)", async () => {
  const body = JSON.stringify({ type: "job.completed", data: { id: "x" } });
  const ts = Math.floor(Date.now() / 1000);
  const signed = await new WebhookSigner(SECRET).sign("msg_1", ts, body);
  assert.equal(signed["webhook-timestamp"], String(ts));
  assert.match(signed["webhook-signature"], /^v1,[A-Za-z0-9+/]+=*$/);
  assert.deepEqual(new Webhook(SECRET).verify(body, { ...signed }), JSON.parse(body));
  assert.throws(() => new Webhook(SECRET).verify(body + " ", { ...signed }));

  const plain = "correct horse battery staple";
  const signedPlain = await new WebhookSigner(plain).sign("msg_2", ts, body);
  const raw = new Webhook(new TextEncoder().encode(plain), { format: "raw" });
  assert.deepEqual(raw.verify(body, { ...signedPlain }), JSON.parse(body));
});

Deno.test("connector: a POST carries its body with Content-Length, on a connection of its own", async () => {
  const seen: { method: string; length: string | null; body: string }[] = [];
  const origin = serveOrigin(async (req) => {
    seen.push({
      method: req.method,
      length: req.headers.get("content-length"),
      body: await req.text(),
    });
    return new Response("ok");
  });
  const connector = new PinnedConnector();
  try {
    const url = new URL(origin.url("/hook"));
    const target = { address: "127.0.0.1", port: origin.port };
    for (const body of ['{"n":1}', "é"]) {
      const { response, done } = await connector.request(url, target, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", "content-length": "999" },
      });
      assert.equal(await response.text(), "ok");
      done();
    }
    assert.deepEqual(seen, [
      { method: "POST", length: "7", body: '{"n":1}' },
      { method: "POST", length: "2", body: "é" },
    ]);
    assert.equal(origin.connections, 2, "a POST never goes on a reused connection");
    // GET keeps its behaviour: it reuses the pooled connection (the last POST's).
    for (let i = 0; i < 2; i++) {
      const { response, done } = await connector.request(url, target, {});
      await response.text();
      done();
    }
    assert.equal(origin.connections, 2);
    await assert.rejects(
      connector.request(url, target, { method: "GET", body: "x" }),
      /cannot carry a body/,
    );
  } finally {
    connector.close();
    await origin.close();
  }
});

Deno.test("a job with callback_url POSTs its signed summary when it ends, retrying after a 500", async () => {
  const png = await makeImage("png", { width: 4, height: 4, seed: 41 });
  const images = startImageOrigin({ "/a.png": { body: png } });
  const { origin: receiver, received } = startReceiver([500]);
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: `${images.allowRule},127.0.0.1:${receiver.port}`,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_RETRY_BASE_MS: "50",
  });
  try {
    const job = await submit(t.app, {
      urls: [images.url("/a.png"), images.url("/missing.png")],
      callback_url: receiver.url("/hooks/jobs"),
    });
    await until(() => received.length >= 2);
    const [first, second] = received;
    assert.equal(first.headers["webhook-id"], second.headers["webhook-id"], "same id on retry");
    assert.equal(first.body, second.body);
    assert.equal(second.headers["content-type"], "application/json");
    const event = new Webhook(SECRET).verify(second.body, second.headers) as any;
    assert.equal(event.type, "job.completed");
    assert.equal(event.data.id, job.id);
    assert.equal(event.data.status, "complete");
    assert.deepEqual(event.data.counts, { pending: 0, complete: 1, failed: 1 });
    const now = await (await t.app.request(`/jobs/${job.id}`)).json();
    assert.equal(event.data.finished, now.finished);
    // Delivered: the outbox is empty and nothing more arrives.
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(received.length, 2);
    const left = [];
    for await (const e of t.service.kv.list({ prefix: keys().webhookOutbox() })) left.push(e);
    assert.equal(left.length, 0);
  } finally {
    await t.close();
    await images.close();
    await receiver.close();
  }
});

Deno.test("a job that ends at submission (its URLs stored already or invalid) still gets its webhook", async () => {
  const png = await makeImage("png", { width: 4, height: 4, seed: 47 });
  const images = startImageOrigin({ "/a.png": { body: png } });
  const { origin: receiver, received } = startReceiver();
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: `${images.allowRule},127.0.0.1:${receiver.port}`,
    WEBHOOK_SECRET: SECRET,
  });
  try {
    const first = await submit(t.app, { urls: [images.url("/a.png")] });
    await waitForJob(t.app, first.id);
    const res = await t.app.request(
      `/images?callback_url=${encodeURIComponent(receiver.url("/hooks"))}`,
      {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: `${images.url("/a.png")}\nnot a url\n`,
      },
    );
    assert.equal(res.status, 202, await res.clone().text());
    const job = await res.json();
    assert.equal(job.status, "complete", "ended at submission");
    await until(() => received.length >= 1);
    const event = new Webhook(SECRET).verify(received[0].body, received[0].headers) as any;
    assert.equal(event.type, "job.completed");
    assert.equal(event.data.id, job.id);
    assert.deepEqual(event.data.counts, { pending: 0, complete: 1, failed: 1 });
  } finally {
    await t.close();
    await images.close();
    await receiver.close();
  }
});

Deno.test("a cancelled job's webhook says job.cancelled", async () => {
  const png = await makeImage("png", { width: 4, height: 4, seed: 42 });
  const images = startImageOrigin({ "/slow.png": { body: png, delayMs: 500 } });
  const { origin: receiver, received } = startReceiver();
  const t = await startTestService({
    FETCH_ALLOW_HOSTS: `${images.allowRule},127.0.0.1:${receiver.port}`,
    WEBHOOK_SECRET: "a plain secret",
  });
  try {
    const urls = Array.from({ length: 10 }, (_, i) => images.url(`/slow.png?${i}`));
    const job = await submit(t.app, { urls, callback_url: receiver.url("/h") });
    const res = await t.app.request(`/jobs/${job.id}`, { method: "DELETE" });
    assert.equal(res.status, 202);
    await until(() => received.length >= 1);
    const key = new TextEncoder().encode("a plain secret");
    const event = new Webhook(key, { format: "raw" }).verify(
      received[0].body,
      received[0].headers,
    ) as any;
    assert.equal(event.type, "job.cancelled");
    assert.equal(event.data.status, "cancelled");
    assert.notEqual(event.data.finished, null);
  } finally {
    await t.close();
    await images.close();
    await receiver.close();
  }
});

/** A connector that records calls and never opens a socket. */
function refusingConnector(): Connector & { calls: number } {
  return {
    calls: 0,
    request() {
      this.calls++;
      return Promise.reject(new Error("no sockets in this test"));
    },
    close() {},
  };
}

function delivery(url: string): WebhookDelivery {
  return { id: "msg_test", jobId: "job", url, body: "{}", attempts: 0, nextAt: 0 };
}

Deno.test("delivery checks the address policy again: a name now resolving to a private address is dropped unsent", async () => {
  const kv = await Deno.openKv(":memory:");
  const k = keys();
  const connector = refusingConnector();
  // DNS changed since submission: the name now answers a private address.
  const resolver: Resolver = { resolve: () => Promise.resolve(["10.1.2.3"]) };
  const logged: string[] = [];
  const deliverer = new WebhookDeliverer({
    kv,
    keys: k,
    policy: DEFAULT_POLICY,
    resolver,
    connector,
    signer: new WebhookSigner(SECRET),
    timeoutMs: 1_000,
    userAgent: "test",
    retries: 5,
    retryBaseMs: 10,
    log: (line) => logged.push(line),
  });
  try {
    await kv.set(k.webhookDelivery("msg_test"), delivery("http://hooks.example.com/h"));
    await deliverer.deliverDue();
    assert.equal(connector.calls, 0, "no connection was attempted");
    assert.equal((await kv.get(k.webhookDelivery("msg_test"))).value, null);
    assert.equal(logged.length, 1);
    assert.match(logged[0], /blocked_address/);
  } finally {
    kv.close();
  }
});

Deno.test("a failed delivery is rescheduled with backoff and given up after the retries", async () => {
  const kv = await Deno.openKv(":memory:");
  const k = keys();
  const connector = refusingConnector();
  const logged: string[] = [];
  const deliverer = new WebhookDeliverer({
    kv,
    keys: k,
    // An allowed literal address: vetted without DNS; the connector refuses to connect.
    policy: { ...DEFAULT_POLICY, allow: parseHostRules("203.0.113.9") },
    resolver: { resolve: () => Promise.reject(new Error("no DNS in this test")) },
    connector,
    signer: new WebhookSigner(SECRET),
    timeoutMs: 1_000,
    userAgent: "test",
    retries: 2,
    retryBaseMs: 1_000,
    log: (line) => logged.push(line),
  });
  try {
    const key = k.webhookDelivery("msg_test");
    await kv.set(key, delivery("http://203.0.113.9/h"));
    const start = Date.now();
    await deliverer.deliverDue();
    let d = (await kv.get<WebhookDelivery>(key)).value!;
    assert.equal(d.attempts, 1);
    assert.ok(d.nextAt >= start + 800 && d.nextAt <= Date.now() + 1_200, `${d.nextAt - start}`);
    assert.match(d.lastError ?? "", /cannot connect/);
    assert.equal(d.leaseOwner, undefined);
    // Not due yet: a round now leaves it alone.
    await deliverer.deliverDue();
    assert.equal(connector.calls, 1);
    // Due: the second failure doubles the wait; the third gives up.
    await deliverer.deliverDue(d.nextAt);
    d = (await kv.get<WebhookDelivery>(key)).value!;
    assert.equal(d.attempts, 2);
    assert.ok(d.nextAt - Date.now() >= 1_500, `${d.nextAt - Date.now()}`);
    await deliverer.deliverDue(d.nextAt);
    assert.equal((await kv.get(key)).value, null);
    assert.equal(connector.calls, 3);
    assert.match(logged[0], /dropped after 3 attempt/);
  } finally {
    kv.close();
  }
});

Deno.test("a delivery outlives the process: one stopped mid-attempt is delivered by the next on the same KV", async () => {
  const png = await makeImage("png", { width: 4, height: 4, seed: 43 });
  const images = startImageOrigin({ "/a.png": { body: png } });
  const received: Received[] = [];
  let stall = true;
  const receiver = serveOrigin(async (req) => {
    received.push({ headers: Object.fromEntries(req.headers), body: await req.text() });
    if (stall) await new Promise((r) => setTimeout(r, 1_000));
    return new Response("ok");
  });
  const dir = await Deno.makeTempDir({ prefix: "image-ingest-webhook-" });
  const env = {
    FETCH_ALLOW_HOSTS: `${images.allowRule},127.0.0.1:${receiver.port}`,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_TIMEOUT_MS: "300",
    WEBHOOK_RETRY_BASE_MS: "50",
    KV_PATH: `${dir}/kv.sqlite3`,
  };
  try {
    const first = await startTestService(env);
    let jobId: string;
    try {
      jobId = (await submit(first.app, {
        urls: [images.url("/a.png")],
        callback_url: receiver.url("/h"),
      })).id;
      await until(() => received.length === 1);
    } finally {
      await first.close();
    }
    stall = false;
    const second = await startTestService(env);
    try {
      await until(() => received.length >= 2);
      assert.equal(received[1].headers["webhook-id"], received[0].headers["webhook-id"]);
      const event = new Webhook(SECRET).verify(received[1].body, received[1].headers) as any;
      assert.equal(event.data.id, jobId);
    } finally {
      await second.close();
    }
  } finally {
    await images.close();
    await receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

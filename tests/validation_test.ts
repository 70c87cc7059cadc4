import assert from "node:assert/strict";
import { keys } from "../services/store/kv_keys.ts";
import { startTestService } from "./support/app.ts";
import { assertProblem, postJson } from "./support/http.ts";

/** Every bad request is a 4xx problem and leaves KV exactly as it was. */
async function assertRejected(
  t: Awaited<ReturnType<typeof startTestService>>,
  res: Response,
  status: number,
) {
  const body = await assertProblem(res, status);
  const entries = [];
  for await (const e of t.service.kv.list({ prefix: [] })) entries.push(e.key);
  assert.deepEqual(entries, [], "a rejected request must not write anything");
  return body;
}

const ok = "https://images.example.com/a.png";

Deno.test("POST /images rejects bad input with problem+json and no side effect", async (t) => {
  const s = await startTestService({}, { startWorker: false });
  try {
    const cases: [string, () => Promise<Response>, number, string?][] = [
      ["malformed JSON", () => postJson(s.app, '{"urls": ['), 400],
      ["wrong type for urls", () => postJson(s.app, { urls: "nope" }), 400, "urls"],
      [
        "wrong type for refresh",
        () => postJson(s.app, { urls: [ok], refresh: "yes" }),
        400,
        "refresh",
      ],
      ["an empty list", () => postJson(s.app, { urls: [] }), 400, "urls"],
      ["a relative URL", () => postJson(s.app, { urls: [ok, "/a.png"] }), 400, "urls[1]"],
      ["an ftp URL", () => postJson(s.app, { urls: ["ftp://example.com/a.png"] }), 400, "urls[0]"],
      [
        "a URL over 8 KiB",
        () => postJson(s.app, { urls: [`${ok}?${"a".repeat(8192)}`] }),
        400,
        "urls[0]",
      ],
      [
        "10,001 URLs",
        () => postJson(s.app, { urls: Array.from({ length: 10_001 }, (_, i) => `${ok}?${i}`) }),
        400,
        "urls",
      ],
      ["an unknown field", () => postJson(s.app, { url: [ok] }), 400],
      [
        "both urls and source_url",
        () => postJson(s.app, { urls: [ok], source_url: [ok] }),
        400,
        "urls",
      ],
      ["neither urls nor source_url", () => postJson(s.app, { refresh: true }), 400, "urls"],
      ["a JSON array body", () => postJson(s.app, [ok]), 400],
      [
        "an unsupported content type",
        () =>
          Promise.resolve(s.app.request("/images", {
            method: "POST",
            headers: { "content-type": "application/xml" },
            body: "<urls/>",
          })),
        415,
      ],
      [
        "a body over 2 MiB",
        () => postJson(s.app, { urls: [`${ok}?${"a".repeat(2 * 1024 * 1024)}`] }),
        413,
      ],
      [
        "no body at all",
        () => Promise.resolve(s.app.request("/images", { method: "POST" })),
        400,
      ],
      [
        "malformed CSV",
        () =>
          Promise.resolve(s.app.request("/images", {
            method: "POST",
            headers: { "content-type": "text/csv" },
            body: 'url\n"https://a.example/x.png',
          })),
        400,
      ],
      [
        "plain text with no valid URL",
        () =>
          Promise.resolve(s.app.request("/images", {
            method: "POST",
            headers: { "content-type": "text/plain" },
            body: `# only bad lines\nnot a url\nftp://example.com/a.png\n`,
          })),
        400,
        "line 3",
      ],
    ];
    for (const [name, send, status, field] of cases) {
      await t.step(`${name} -> ${status}`, async () => {
        const body = await assertRejected(s, await send(), status);
        if (field) {
          assert.ok(
            body.errors?.some((e: { field: string }) => e.field === field),
            `expected an error on ${field}: ${JSON.stringify(body.errors)}`,
          );
        }
      });
    }
  } finally {
    await s.close();
  }
});

Deno.test("query parameters are validated with problem+json answers", async (t) => {
  const s = await startTestService({}, { startWorker: false });
  try {
    const cases: [string, number][] = [
      ["/images?limit=0", 400],
      ["/images?limit=1001", 400],
      ["/images?limit=ten", 400],
      ["/images?cursor=bogus", 400],
      ["/images/content", 400],
      ["/images/metadata", 400],
      ["/jobs/01KAQ4Z3T7V6B6XG5N3W2R8M9C", 404],
      ["/jobs/not-a-job", 404],
      ["/jobs/01KAQ4Z3T7V6B6XG5N3W2R8M9C/items?state=done", 400],
      ["/no/such/route", 404],
    ];
    for (const [path, status] of cases) {
      await t.step(`${path} -> ${status}`, async () => {
        await assertProblem(await s.app.request(path), status);
      });
    }
  } finally {
    await s.close();
  }
});

Deno.test("text/plain and text/csv lists are accepted like JSON", async () => {
  const s = await startTestService({}, { startWorker: false });
  try {
    const plain = await s.app.request("/images?refresh=true", {
      method: "POST",
      headers: { "content-type": "text/plain; charset=utf-8" },
      body: `# my list\n${ok}\n\nhttps://images.example.com/b.png\n${ok}\n`,
    });
    assert.equal(plain.status, 202);
    assert.equal((await plain.json()).total, 2);

    const csv = await s.app.request("/images", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: `id,url\n1,${ok}\n2,"https://images.example.com/c,d.png"\n`,
    });
    assert.equal(csv.status, 202);
    const job = await csv.json();
    const items = await (await s.app.request(`/jobs/${job.id}/items`)).json();
    assert.deepEqual(items.items.map((i: { url: string }) => i.url), [
      ok,
      "https://images.example.com/c,d.png",
    ]);
    const jobs = [];
    for await (const e of s.service.kv.list({ prefix: keys().job("").slice(0, 2) })) jobs.push(e);
    assert.equal(jobs.length, 2);
  } finally {
    await s.close();
  }
});

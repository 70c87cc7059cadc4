import assert from "node:assert/strict";
import { keys } from "../services/store/kv_keys.ts";
import { startTestService, type TestService } from "./support/app.ts";
import { assertProblem } from "./support/http.ts";

const A = "https://images.example.com/a.png";
const B = "https://images.example.com/b.png";

function postWithKey(
  t: TestService,
  key: string,
  body: string | FormData,
  contentType?: string,
  path = "/images",
) {
  const headers: Record<string, string> = { "idempotency-key": key };
  if (contentType) headers["content-type"] = contentType;
  return Promise.resolve(t.app.request(path, { method: "POST", headers, body }));
}

async function jobIds(t: TestService): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of t.service.kv.list({ prefix: keys().job("").slice(0, 2) })) {
    ids.push(e.key.at(-1) as string);
  }
  return ids;
}

Deno.test("Idempotency-Key: the same request again answers the same job, no second one", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const json = JSON.stringify({ urls: [A, B] });
    const first = await postWithKey(t, "order-1", json, "application/json");
    assert.equal(first.status, 202);
    const job = await first.json();
    const again = await postWithKey(t, "order-1", json, "application/json");
    assert.equal(again.status, 202);
    assert.equal(again.headers.get("location"), `/jobs/${job.id}`);
    assert.equal((await again.json()).id, job.id);

    // Text bodies too, with the query in the fingerprint.
    const text = await postWithKey(t, "order-2", `${A}\n`, "text/plain", "/images?refresh=true");
    const textJob = (await text.json()).id;
    const textAgain = await postWithKey(
      t,
      "order-2",
      `${A}\n`,
      "text/plain",
      "/images?refresh=true",
    );
    assert.equal((await textAgain.json()).id, textJob);
    assert.deepEqual((await jobIds(t)).sort(), [job.id, textJob].sort());
  } finally {
    await t.close();
  }
});

Deno.test("Idempotency-Key: a different request with a used key is 422 and changes nothing", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const first = await postWithKey(t, "k", JSON.stringify({ urls: [A] }), "application/json");
    const job = await first.json();
    const cases: [string, string, string][] = [
      [JSON.stringify({ urls: [B] }), "application/json", "/images"],
      [JSON.stringify({ urls: [A], refresh: true }), "application/json", "/images"],
      [`${A}\n`, "text/plain", "/images"],
      [`${A}\n`, "text/plain", "/images?refresh=true"],
    ];
    for (const [body, type, path] of cases) {
      await assertProblem(await postWithKey(t, "k", body, type, path), 422);
    }
    assert.deepEqual(await jobIds(t), [job.id]);
  } finally {
    await t.close();
  }
});

Deno.test("Idempotency-Key: a multipart upload sent again (new boundary) is the same request", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const form = () => {
      const f = new FormData();
      f.append("file", new File([`${A}\n${B}\n`], "list.txt", { type: "text/plain" }));
      return f;
    };
    const one = await (await postWithKey(t, "upload", form())).json();
    const two = await (await postWithKey(t, "upload", form())).json();
    assert.equal(two.id, one.id);
    const other = new FormData();
    other.append("file", new File([`${A}\n`], "list.txt", { type: "text/plain" }));
    await assertProblem(await postWithKey(t, "upload", other), 422);
  } finally {
    await t.close();
  }
});

Deno.test("Idempotency-Key: concurrent requests with one key create exactly one job", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    for (let round = 0; round < 5; round++) {
      const body = JSON.stringify({ urls: [A, `${B}?round=${round}`] });
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => postWithKey(t, `race-${round}`, body, "application/json")),
      );
      const ids = new Set<string>();
      for (const res of answers) {
        assert.equal(res.status, 202);
        ids.add((await res.json()).id);
      }
      assert.equal(ids.size, 1, `round ${round}: ${[...ids]}`);
    }
    assert.equal((await jobIds(t)).length, 5);
    // Racing text lists (streamed bodies) as well.
    const answers = await Promise.all(
      [0, 1, 2].map(() => postWithKey(t, "race-text", `${A}\n${B}\n`, "text/plain")),
    );
    const ids = new Set(await Promise.all(answers.map(async (r) => (await r.json()).id)));
    assert.equal(ids.size, 1);
    assert.equal((await jobIds(t)).length, 6);
    // The requests that lost the race left nothing behind: only the winners' items exist.
    let items = 0;
    for await (const _ of t.service.kv.list({ prefix: keys().itemsOf("").slice(0, 2) })) items++;
    assert.equal(items, 5 * 2 + 2);
    for await (const e of t.service.kv.list({ prefix: keys().creatingJobs() })) {
      assert.fail(`creation marker left: ${String(e.key)}`);
    }
  } finally {
    await t.close();
  }
});

Deno.test("Idempotency-Key must be 1 to 255 characters and is kept with a 24-hour expiry", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const body = JSON.stringify({ urls: [A] });
    await assertProblem(await postWithKey(t, "x".repeat(256), body, "application/json"), 400);
    await assertProblem(await postWithKey(t, "", body, "application/json"), 400);
    assert.deepEqual(await jobIds(t), []);
    const ok = await postWithKey(t, "y".repeat(255), body, "application/json");
    assert.equal(ok.status, 202);
    const stored = await t.service.kv.get(keys().idempotencyKey("y".repeat(255)));
    assert.equal((stored.value as { jobId: string }).jobId, (await ok.json()).id);
  } finally {
    await t.close();
  }
});

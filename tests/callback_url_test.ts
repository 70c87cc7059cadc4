import assert from "node:assert/strict";
import { keys } from "../services/store/kv_keys.ts";
import type { JobRecord } from "../services/store/records.ts";
import { startTestService, type TestService } from "./support/app.ts";
import { assertProblem } from "./support/http.ts";

const A = "https://images.example.com/a.png";

async function nothingWritten(t: TestService) {
  const written = [];
  for await (const e of t.service.kv.list({ prefix: [] })) written.push(e.key);
  assert.deepEqual(written, []);
}

function postJson(t: TestService, body: unknown) {
  return Promise.resolve(t.app.request("/images", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  }));
}

Deno.test("callback_url is refused with 400 when the service has no WEBHOOK_SECRET", async () => {
  const t = await startTestService({ FETCH_ALLOW_HOSTS: "127.0.0.1:9" }, { startWorker: false });
  try {
    const res = await postJson(t, { urls: [A], callback_url: "http://127.0.0.1:9/hook" });
    const body = await assertProblem(res, 400);
    assert.match(body.detail, /WEBHOOK_SECRET/);
    await nothingWritten(t);
  } finally {
    await t.close();
  }
});

Deno.test("callback_url must pass the download address policy", async (t) => {
  const svc = await startTestService({ WEBHOOK_SECRET: "whsec-test" }, { startWorker: false });
  try {
    // IP literals only: the policy refuses them without a lookup or a packet.
    for (
      const url of [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/hook",
        "http://[::7f00:1]/hook",
        "http://user:pw@127.0.0.1:9/hook",
        "ftp://127.0.0.1/hook",
        "not a url",
      ]
    ) {
      await t.step(url, async () => {
        await assertProblem(await postJson(svc, { urls: [A], callback_url: url }), 400);
        const text = await svc.app.request(
          `/images?callback_url=${encodeURIComponent(url)}`,
          { method: "POST", headers: { "content-type": "text/plain" }, body: `${A}\n` },
        );
        await assertProblem(text, 400);
        const form = new FormData();
        form.append("file", new File([`${A}\n`], "l.txt", { type: "text/plain" }));
        form.append("callback_url", url);
        await assertProblem(await svc.app.request("/images", { method: "POST", body: form }), 400);
        await nothingWritten(svc);
      });
    }
  } finally {
    await svc.close();
  }
});

Deno.test("an allowed callback_url is stored with the job, from JSON, query or form", async () => {
  const t = await startTestService(
    { WEBHOOK_SECRET: "whsec-test", FETCH_ALLOW_HOSTS: "127.0.0.1:9" },
    { startWorker: false },
  );
  try {
    const hook = "http://127.0.0.1:9/hook";
    const ids: string[] = [];
    const json = await postJson(t, { urls: [A], callback_url: hook });
    assert.equal(json.status, 202);
    ids.push((await json.json()).id);
    const text = await t.app.request(`/images?callback_url=${encodeURIComponent(hook)}`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: `${A}\n`,
    });
    assert.equal(text.status, 202);
    ids.push((await text.json()).id);
    const form = new FormData();
    form.append("file", new File([`${A}\n`], "l.txt", { type: "text/plain" }));
    form.append("callback_url", hook);
    const multipart = await t.app.request("/images", { method: "POST", body: form });
    assert.equal(multipart.status, 202);
    ids.push((await multipart.json()).id);
    for (const id of ids) {
      const job = (await t.service.kv.get<JobRecord>(keys().job(id))).value!;
      assert.equal(job.callbackUrl, hook);
    }
    // Another port on the same address is not covered by the rule.
    const other = await postJson(t, { urls: [A], callback_url: "http://127.0.0.1:10/hook" });
    await assertProblem(other, 400);
  } finally {
    await t.close();
  }
});

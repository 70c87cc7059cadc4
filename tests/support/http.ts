import assert from "node:assert/strict";

type Requester = { request(input: string, init?: RequestInit): Response | Promise<Response> };

/** POSTs a JSON body to /images and returns the response. */
export function postJson(app: Requester, body: unknown): Promise<Response> {
  return Promise.resolve(app.request("/images", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  }));
}

/** Submits URLs, asserts the 202, returns the job. */
export async function submit(
  app: Requester,
  body: unknown,
): Promise<{ id: string; [k: string]: unknown }> {
  const res = await postJson(app, body);
  assert.equal(res.status, 202, await res.clone().text());
  return await res.json();
}

/** Polls a job until it is complete and returns it. */
export async function waitForJob(app: Requester, id: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await app.request(`/jobs/${id}`);
    assert.equal(res.status, 200);
    const job = await res.json();
    if (job.status === "complete") return job;
    if (Date.now() > deadline) throw new Error(`job ${id} not complete: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Reads every item of a job through the paginated endpoint. */
export async function allItems(app: Requester, id: string, query = "") {
  const items: { index: number; url: string; state: string; reason?: string; attempts: number }[] =
    [];
  let cursor: string | null = null;
  do {
    const qs = new URLSearchParams(query);
    if (cursor) qs.set("cursor", cursor);
    const res = await app.request(`/jobs/${id}/items?${qs}`);
    assert.equal(res.status, 200);
    const page = await res.json();
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

/** Asserts a problem+json answer with the given status and returns its body. */
export async function assertProblem(res: Response, status: number) {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = JSON.parse(text);
  assert.equal(body.status, status);
  assert.equal(typeof body.type, "string");
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.detail, "string");
  assert.doesNotMatch(text, /ZodError|at .*\.ts:\d+|"code":"invalid_/);
  return body;
}

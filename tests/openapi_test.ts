import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";

Deno.test("the committed openapi/openapi.json matches the served document (run `deno task openapi`)", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const served = await (await t.app.request("/openapi.json")).json();
    const committed = JSON.parse(
      await Deno.readTextFile(new URL("../openapi/openapi.json", import.meta.url)),
    );
    assert.deepEqual(committed, served);
  } finally {
    await t.close();
  }
});

Deno.test("every route of the app is in the OpenAPI document with its error responses", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const doc = await (await t.app.request("/openapi.json")).json();
    assert.equal(doc.openapi, "3.1.0");
    const expected: Record<string, string[]> = {
      "/images": ["post", "get"],
      "/images/content": ["get", "head"],
      "/images/metadata": ["get"],
      "/blobs/{sha256}": ["get", "head"],
      "/jobs/{id}": ["get"],
      "/jobs/{id}/items": ["get"],
      "/jobs": ["get"],
      "/jobs/{id}/events": ["get"],
      "/jobs/{id}/results.csv": ["get"],
      "/jobs/{id}/results.ndjson": ["get"],
      "/healthz": ["get"],
    };
    for (const [path, methods] of Object.entries(expected)) {
      for (const method of methods) {
        const op = doc.paths[path]?.[method];
        assert.ok(op, `${method.toUpperCase()} ${path} is documented`);
        for (const [status, response] of Object.entries(op.responses) as [string, any][]) {
          if (Number(status) >= 400) {
            assert.ok(
              response.content["application/problem+json"],
              `${path} ${status} is a problem`,
            );
          }
        }
      }
    }
    const post = doc.paths["/images"].post;
    assert.deepEqual(Object.keys(post.responses).sort(), ["202", "400", "413", "415", "422"]);
    assert.ok(post.requestBody.content["application/json"].schema);
    assert.ok(doc.components.schemas.FailureReason.description.includes("blocked_address"));
    for (const path of ["/images/content", "/blobs/{sha256}"]) {
      const get = doc.paths[path].get;
      assert.deepEqual(
        get.parameters.filter((p: any) => p.in === "header").map((p: any) => p.name).sort(),
        ["If-Modified-Since", "If-None-Match", "If-Range", "Range"],
        path,
      );
      assert.deepEqual(Object.keys(get.responses).sort(), [
        "200",
        "206",
        "304",
        "400",
        "404",
        "416",
        "422",
        "500",
        "501",
        "503",
      ]);
      const query = get.parameters.filter((p: any) => p.in === "query").map((p: any) => p.name);
      for (const name of ["w", "h", "fit", "format", "quality", "metadata"]) {
        assert.ok(query.includes(name), `${path} documents ${name}`);
      }
      assert.ok(get.responses["503"].headers["Retry-After"], `${path} 503 Retry-After`);
      for (const name of ["Last-Modified", "Cache-Control", "ETag"]) {
        assert.ok(get.responses["200"].headers[name], `${path} 200 ${name}`);
        assert.ok(get.responses["304"].headers[name], `${path} 304 ${name}`);
      }
    }
    assert.ok(doc.paths["/images/content"].get.responses["200"].headers["Content-Disposition"]);
    assert.ok(doc.components.schemas.Image.properties.blobUrl);
  } finally {
    await t.close();
  }
});

Deno.test("GET /docs renders Scalar from the local bundle, never a CDN", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const page = await t.app.request("/docs");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /text\/html/);
    const html = await page.text();
    assert.match(html, /\/docs\/scalar\.js/);
    assert.match(html, /\/openapi\.json/);
    assert.doesNotMatch(html, /<script[^>]+src="https?:\/\//);
    const script = await t.app.request("/docs/scalar.js");
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type")!, /javascript/);
    assert.ok((await script.arrayBuffer()).byteLength > 100_000);
  } finally {
    await t.close();
  }
});

Deno.test("GET /healthz answers ok", async () => {
  const t = await startTestService({}, { startWorker: false });
  try {
    const res = await t.app.request("/healthz");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok" });
  } finally {
    await t.close();
  }
});

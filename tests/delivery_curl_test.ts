/**
 * Delivery against a client we did not write: curl's `-r` (Range) and `-z`
 * (If-Modified-Since) on a served instance on 127.0.0.1. Ignored, with a
 * message, where curl is missing.
 */
import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";
import { submit, waitForJob } from "./support/http.ts";
import { startImageOrigin } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";

const curlFound = await new Deno.Command("curl", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success, () => false);
if (!curlFound) console.warn("curl not found: the curl delivery test is ignored");

/** Runs curl (never through a proxy) and returns the status it saw and the body it wrote. */
async function curl(args: string[]): Promise<{ status: number; body: Uint8Array }> {
  const out = await Deno.makeTempFile({ prefix: "curl-body-" });
  try {
    const res = await new Deno.Command("curl", {
      args: ["--silent", "--noproxy", "*", "--output", out, "--write-out", "%{http_code}", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(res.success, new TextDecoder().decode(res.stderr));
    return {
      status: Number(new TextDecoder().decode(res.stdout)),
      body: await Deno.readFile(out).catch(() => new Uint8Array()),
    };
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}

Deno.test({
  name: "curl -r 0-99 gets 100 bytes and curl -z <date> gets 304 or the image, by URL and by hash",
  ignore: !curlFound,
  async fn() {
    const origin = startImageOrigin();
    const t = await startTestService({ FETCH_ALLOW_HOSTS: origin.allowRule });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.app.fetch);
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      const png = await makeImage("png", { width: 60, height: 40, seed: 21 });
      origin.set("/curl.png", { body: png });
      const url = origin.url("/curl.png");
      await waitForJob(t.app, (await submit(t.app, { urls: [url] })).id);
      const meta = await (await t.app.request(`/images/metadata?url=${encodeURIComponent(url)}`))
        .json();
      const lastModified = new Date(meta.storedAt).toUTCString();
      const dayBefore = new Date(Date.parse(meta.storedAt) - 86_400_000).toUTCString();

      for (const path of [meta.contentUrl, meta.blobUrl]) {
        const part = await curl(["-r", "0-99", `${base}${path}`]);
        assert.equal(part.status, 206, path);
        assert.deepEqual(part.body, png.subarray(0, 100), path);

        const notModified = await curl(["-z", lastModified, `${base}${path}`]);
        assert.equal(notModified.status, 304, path);
        assert.equal(notModified.body.byteLength, 0);

        const modified = await curl(["-z", dayBefore, `${base}${path}`]);
        assert.equal(modified.status, 200, path);
        assert.deepEqual(modified.body, png, path);
      }
    } finally {
      await server.shutdown();
      await t.close();
      await origin.close();
    }
  },
});

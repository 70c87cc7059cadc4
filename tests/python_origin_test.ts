/**
 * The whole service against an origin we did not write: Python's
 * `http.server` on loopback, which routes on the raw request target and
 * answers 404 to an absolute-form one. Ignored, with a message, where
 * python3 is missing.
 */
import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";
import { allItems, submit, waitForJob } from "./support/http.ts";
import { makeImage } from "./support/images.ts";

const python = await new Deno.Command("python3", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
})
  .output().then((o) => o.success, () => false);
if (!python) console.warn("python3 not found: the http.server end-to-end test is ignored");

/** Starts `python3 -m http.server` on 127.0.0.1 with an OS-chosen port; resolves once it listens. */
async function startPythonServer(dir: string) {
  const child = new Deno.Command("python3", {
    args: ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  // Its access log goes to stderr; keep it for the assertions.
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (text) => void log.push(text) }),
  );
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let port = 0;
  while (!port) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`http.server exited: ${out}`);
    out += value;
    port = Number(/port (\d+)/.exec(out)?.[1] ?? 0);
  }
  return {
    port,
    log: () => log.join(""),
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await reader.cancel().catch(() => {});
      await stderr.catch(() => {});
    },
  };
}

Deno.test({
  name: "images served by python3 -m http.server are fetched, stored and served back",
  ignore: !python,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "python-origin-" });
    const files = {
      "00000.png": new Uint8Array(await makeImage("png", { width: 40, height: 30 })),
      "photo one.jpeg": new Uint8Array(await makeImage("jpeg", { width: 50, height: 20 })),
    };
    for (const [name, data] of Object.entries(files)) await Deno.writeFile(`${dir}/${name}`, data);
    const server = await startPythonServer(dir);
    const base = `http://127.0.0.1:${server.port}`;
    const t = await startTestService({ FETCH_ALLOW_HOSTS: `127.0.0.1:${server.port}` });
    try {
      const urls = [`${base}/00000.png`, `${base}/photo%20one.jpeg`, `${base}/missing.png`];
      const job = await submit(t.app, { urls });
      await waitForJob(t.app, job.id);
      const items = await allItems(t.app, job.id);
      assert.deepEqual(items.map((i) => [i.state, i.reason ?? null]), [
        ["complete", null],
        ["complete", null],
        ["failed", "http_404"],
      ]);
      for (
        const [url, bytes] of [[urls[0], files["00000.png"]], [
          urls[1],
          files["photo one.jpeg"],
        ]] as const
      ) {
        const res = await t.app.request(`/images/content?url=${encodeURIComponent(url)}`);
        assert.equal(res.status, 200);
        assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);
      }
      // What python logged: origin-form targets, never `GET http://...`.
      assert.match(server.log(), /"GET \/00000\.png HTTP\/1\.1" 200/);
      assert.match(server.log(), /"GET \/photo%20one\.jpeg HTTP\/1\.1" 200/);
      assert.doesNotMatch(server.log(), /GET http:/);
    } finally {
      await t.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

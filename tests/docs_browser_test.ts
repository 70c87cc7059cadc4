import assert from "node:assert/strict";
import { startTestService } from "./support/app.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);

Deno.test({
  name: "GET /docs renders the API reference in a browser with no internet access",
  // CI installs Debian's chromium (.ci/run); elsewhere the test is skipped rather than faked.
  ignore: !hasChromium,
  fn: async () => {
    const t = await startTestService({}, { startWorker: false });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.app.fetch);
    const profile = await Deno.makeTempDir({ prefix: "chromium-" });
    try {
      const out = await new Deno.Command(CHROMIUM, {
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          // Nothing may leave the machine: every name resolves to nothing but loopback,
          // and any request not for loopback (which bypasses proxies) goes to a closed port.
          "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
          "--proxy-server=http://127.0.0.1:9",
          `--user-data-dir=${profile}`,
          "--virtual-time-budget=10000",
          "--dump-dom",
          `http://127.0.0.1:${server.addr.port}/docs`,
        ],
        stdout: "piped",
        stderr: "null",
      }).output();
      const dom = new TextDecoder().decode(out.stdout);
      // Text that only exists once Scalar's script has fetched and rendered the document.
      assert.match(dom, /Submit image URLs for download/);
      assert.match(dom, /List stored images, oldest first/);
      assert.match(dom, /\/images\/metadata/);
      // Hosted features (AI agent, MCP) are off: they cannot work offline.
      assert.doesNotMatch(dom, /Ask AI|Generate MCP/);
    } finally {
      await server.shutdown();
      await t.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});

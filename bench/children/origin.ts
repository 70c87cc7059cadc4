/**
 * The benchmarks' image origin, run as its own process so its CPU time is not charged to the
 * service or to the baselines. Loads every file of a fixture directory into memory and answers:
 *
 *   GET /img/<name>   the fixture file (Content-Type from the extension)
 *   GET /r/<name>     the retrieval fixture, same way
 *   GET /tiny/<any>   one tiny PNG, for URLs whose download should cost next to nothing
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-read=DIR bench/children/origin.ts DIR
 * Prints `listening on http://127.0.0.1:PORT`. Listens on loopback only.
 */

const TYPES: Record<string, string> = {
  jpg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  bmp: "image/bmp",
  tif: "image/tiff",
  ico: "image/x-icon",
};

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: origin.ts FIXTURE_DIR");
  Deno.exit(2);
}

interface Entry {
  body: Uint8Array<ArrayBuffer>;
  type: string;
}

const files = new Map<string, Entry>();
for (const sub of ["img", "r"]) {
  for await (const f of Deno.readDir(`${dir}/${sub}`)) {
    if (!f.isFile) continue;
    const ext = f.name.slice(f.name.lastIndexOf(".") + 1);
    files.set(`/${sub}/${f.name}`, {
      body: await Deno.readFile(`${dir}/${sub}/${f.name}`),
      type: TYPES[ext] ?? "application/octet-stream",
    });
  }
}
const tiny: Entry = { body: await Deno.readFile(`${dir}/tiny.png`), type: "image/png" };

function pathOf(url: string): string {
  // The service sends absolute-form request lines; req.url is absolute either way.
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, (req) => {
  const path = pathOf(req.url);
  const entry = path.startsWith("/tiny/") ? tiny : files.get(path);
  if (!entry) return new Response("not found", { status: 404 });
  return new Response(entry.body, { headers: { "content-type": entry.type } });
});

Deno.addSignalListener("SIGTERM", () => Deno.exit(0));

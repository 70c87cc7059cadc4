/**
 * The benchmarks' image origin, run as its own process so its CPU time is not charged to the
 * service or to the baselines. Loads every file of a fixture directory into memory and answers:
 *
 *   GET /img/<name>     the fixture file (Content-Type from the extension)
 *   GET /r/<name>       the retrieval fixture, same way
 *   GET /tiny/<any>     one tiny PNG, for URLs whose download should cost next to nothing
 *   GET /tiny-unique/<any>  that PNG with the path appended after its end: distinct bytes per URL
 *   GET /stream/<name>  with --stream=DIR2: a file of DIR2 read from disk as it is sent (for
 *                       files too large to hold in memory)
 *
 * --throttle=BYTES_PER_S sends every body at that rate (16 KB slices paced by timers). Each
 * HTTP/1.1 connection carries one response at a time, so this is a per-connection limit.
 * Every answer carries its Content-Length, as a static file server's would.
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-read=DIR[,DIR2] bench/children/origin.ts DIR
 *          [--throttle=BYTES_PER_S] [--stream=DIR2]
 * Prints `listening on http://127.0.0.1:PORT`. Listens on loopback only.
 */
import { pacedBody } from "./paced_body.ts";

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
const option = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const throttle = option("throttle") ? Number(option("throttle")) : null;
const streamDir = option("stream") ?? null;
if (!dir || dir.startsWith("--") || (throttle !== null && !(throttle > 0))) {
  console.error("usage: origin.ts FIXTURE_DIR [--throttle=BYTES_PER_S] [--stream=DIR]");
  Deno.exit(2);
}

const typeOf = (name: string) => TYPES[name.slice(name.lastIndexOf(".") + 1)] ?? "";

interface Entry {
  body: Uint8Array<ArrayBuffer>;
  type: string;
}

const files = new Map<string, Entry>();
for (const sub of ["img", "r"]) {
  for await (const f of Deno.readDir(`${dir}/${sub}`)) {
    if (!f.isFile) continue;
    files.set(`/${sub}/${f.name}`, {
      body: await Deno.readFile(`${dir}/${sub}/${f.name}`),
      type: typeOf(f.name) || "application/octet-stream",
    });
  }
}
const tiny: Entry = { body: await Deno.readFile(`${dir}/tiny.png`), type: "image/png" };

function pathOf(url: string): string {
  // req.url is absolute whichever request-target form the client sent.
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

function answer(
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>,
  bytes: number,
  type: string,
) {
  const sent = throttle === null
    ? body
    : pacedBody(body instanceof Uint8Array ? [body] : body, throttle);
  return new Response(sent, {
    headers: { "content-type": type, "content-length": String(bytes) },
  });
}

/** A file of the stream directory, opened per request; null when there is no such file. */
async function fromDisk(name: string): Promise<Response | null> {
  if (!streamDir || !/^[\w.-]+$/.test(name) || name.startsWith(".")) return null;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(`${streamDir}/${name}`, { read: true });
  } catch {
    return null;
  }
  const { size } = await file.stat();
  // The readable closes the file when the body ends or the client goes away.
  return answer(file.readable, size, typeOf(name) || "application/octet-stream");
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, async (req) => {
  const path = pathOf(req.url);
  if (path.startsWith("/stream/")) {
    return await fromDisk(path.slice("/stream/".length)) ??
      new Response("not found", { status: 404 });
  }
  if (path.startsWith("/tiny-unique/")) {
    // The tiny PNG with its own path appended after IEND: still a PNG to a
    // reader, but different bytes (and blob) for every URL.
    const body = new Uint8Array([...tiny.body, ...new TextEncoder().encode(path)]);
    return answer(body, body.byteLength, tiny.type);
  }
  const entry = path.startsWith("/tiny/") ? tiny : files.get(path);
  if (!entry) return new Response("not found", { status: 404 });
  return answer(entry.body, entry.body.byteLength, entry.type);
});

Deno.addSignalListener("SIGTERM", () => Deno.exit(0));

/**
 * The retrieval baseline: a plain Deno.serve, in its own process, answering every GET with one
 * file's bytes held in memory (and its Content-Type from the extension).
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-read=FILE bench/children/static_one.ts FILE
 * Prints `listening on http://127.0.0.1:PORT`. Listens on loopback only.
 */
const file = Deno.args[0];
const body = await Deno.readFile(file);
const type = file.endsWith(".jpg") ? "image/jpeg" : "application/octet-stream";

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, () => new Response(body, { headers: { "content-type": type } }));

Deno.addSignalListener("SIGTERM", () => Deno.exit(0));

/**
 * Entry point of `deno task ingest <file|->`: submits a URL list to the
 * image ingestion service over HTTP and follows the job to its end.
 * Run with --help for the options.
 */
import { runIngest } from "./run.ts";

if (import.meta.main) {
  const code = await runIngest(Deno.args, {
    out: (text) => writeAll(Deno.stdout, text),
    err: (text) => writeAll(Deno.stderr, text),
    terminal: Deno.stdout.isTerminal(),
  });
  Deno.exit(code);
}

/** writeSync may take only part of a buffer (a full pipe): loop until all is written. */
function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
}

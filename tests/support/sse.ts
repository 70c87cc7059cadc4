/** A small Server-Sent Events reader over a fetch response, for tests. */

export interface SseEvent {
  id?: string;
  event: string;
  data: any;
}

/** Everything read from a stream: events and comments, in arrival order. */
export interface SseRead {
  events: SseEvent[];
  comments: string[];
  retry?: number;
  /** The server closed the stream. */
  closed: boolean;
}

/**
 * Reads `res` (a text/event-stream) until `until` says stop (checked after
 * each event or comment) or the server closes it, then cancels the body
 * (which closes the connection) unless `keepOpen`. Follows the parsing
 * rules of the HTML standard for the fields this service sends.
 */
export async function readSse(
  res: Response,
  until: (read: SseRead) => boolean = () => false,
  opts: { keepOpen?: boolean } = {},
): Promise<SseRead> {
  const read: SseRead = { events: [], comments: [], closed: false };
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let block: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        read.closed = true;
        return read;
      }
      buffer += value;
      let nl: number;
      while ((nl = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line !== "") {
          block.push(line);
          continue;
        }
        const stop = dispatch(block, read) && until(read);
        block = [];
        if (stop) return read;
      }
    }
  } finally {
    if (opts.keepOpen) reader.releaseLock();
    else await reader.cancel().catch(() => {});
  }
}

/** Adds one blank-line-terminated block to `read`; true when it carried something. */
function dispatch(lines: string[], read: SseRead): boolean {
  const event: Partial<SseEvent> & { dataLines: string[] } = { dataLines: [] };
  let any = false;
  for (const line of lines) {
    if (line.startsWith(":")) {
      read.comments.push(line.slice(1).trim());
      any = true;
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") event.id = value;
    else if (field === "event") event.event = value;
    else if (field === "data") event.dataLines.push(value);
    else if (field === "retry") read.retry = Number(value);
    any = true;
  }
  if (event.dataLines.length > 0) {
    read.events.push({
      id: event.id,
      event: event.event ?? "message",
      data: JSON.parse(event.dataLines.join("\n")),
    });
  }
  return any;
}

/** A real `Deno.serve` on 127.0.0.1 for an app's fetch handler (streaming needs one). */
export function serveApp(
  fetch: (req: Request) => Response | Promise<Response>,
): { base: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, fetch);
  return { base: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

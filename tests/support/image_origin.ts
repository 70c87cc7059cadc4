/** A real HTTP origin on 127.0.0.1 serving fixed responses and counting requests. */

export interface Route {
  body?: Uint8Array | string;
  status?: number;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Builds the whole answer instead (for streamed, misbehaving bodies). */
  respond?: () => Response;
}

export interface ImageOrigin {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  /** `127.0.0.1:<port>`, for FETCH_ALLOW_HOSTS. */
  readonly allowRule: string;
  url(path: string): string;
  set(path: string, route: Route): void;
  hits(path: string): number;
  totalHits(): number;
  close(): Promise<void>;
}

export function startImageOrigin(routes: Record<string, Route> = {}): ImageOrigin {
  const table = new Map(Object.entries(routes));
  const counts = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const route = table.get(path);
    if (!route) return new Response("not found", { status: 404 });
    if (route.delayMs) await new Promise((r) => setTimeout(r, route.delayMs));
    if (route.respond) return route.respond();
    return new Response(route.body as BodyInit ?? null, {
      status: route.status ?? 200,
      headers: route.headers ?? {},
    });
  });
  const port = server.addr.port;
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    allowRule: `127.0.0.1:${port}`,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    set: (path, route) => void table.set(path, route),
    hits: (path) => counts.get(path) ?? 0,
    totalHits: () => [...counts.values()].reduce((a, b) => a + b, 0),
    close: () => server.shutdown(),
  };
}

/** Polls until `check` is true or the time runs out (then throws). */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Helpers for the upload tests: forms, raw requests on loopback, and what is on disk. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { serveApp } from "./sse.ts";

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
export const bytes = (b: Uint8Array) => b as Uint8Array<ArrayBuffer>;

/** A form with the given fields in order; Uint8Array values become files. */
export function form(fields: [string, string | Uint8Array][]): FormData {
  const f = new FormData();
  for (const [name, value] of fields) {
    if (typeof value === "string") f.append(name, value);
    else f.append(name, new File([bytes(value)], `${name}.png`, { type: "image/png" }));
  }
  return f;
}

/** Every file under the data directory's blob store (committed and temporary). */
export async function filesOnDisk(dataDir: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: string) {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else found.push(path);
    }
  }
  for (const sub of ["blobs", "tmp"]) {
    await walk(`${dataDir}/${sub}`).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }
  return found;
}

/** Asserts nothing is stored: no index entry and no file in the blob store. */
export async function assertNothingStored(
  app: { request(path: string): Response | Promise<Response> },
  dataDir: string,
): Promise<void> {
  const list = await (await app.request("/images")).json();
  assert.deepEqual(list.items, []);
  assert.deepEqual(await filesOnDisk(dataDir), []);
}

/** A form as Deno encodes it: its content type and bytes. */
export async function encodeForm(f: FormData): Promise<{ type: string; encoded: Uint8Array }> {
  const req = new Request("http://form.invalid/", { method: "POST", body: f });
  return {
    type: req.headers.get("content-type")!,
    encoded: new Uint8Array(await req.arrayBuffer()),
  };
}

/**
 * Sends the head of a request (`POST /images/upload` unless `target` says
 * otherwise) declaring `length` bytes, then `body` (possibly less than
 * declared), to 127.0.0.1:`port`; returns the connection, still open.
 */
export async function rawUpload(
  port: number,
  type: string,
  length: number,
  body?: Uint8Array,
  target = "POST /images/upload",
) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = `${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\n` +
    `Content-Length: ${length}\r\n\r\n`;
  await writeAll(conn, new TextEncoder().encode(head));
  if (body) await writeAll(conn, body);
  return conn;
}

export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/**
 * Reads until the status line and headers are in; returns the status, or 0
 * when none came within `ms` (the connection is then closed).
 */
export async function readStatus(conn: Deno.Conn, ms = 5_000): Promise<number> {
  let text = "";
  const buf = new Uint8Array(4096);
  const timer = setTimeout(() => conn.close(), ms);
  try {
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  } finally {
    clearTimeout(timer);
  }
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

/**
 * Serves `fetch` on 127.0.0.1, sends only the head of a request declaring
 * `length` bytes, and returns the status answered (0 when none came in 5 s).
 */
export async function statusForDeclaredLength(
  fetch: (req: Request) => Response | Promise<Response>,
  target: string,
  type: string,
  length: number,
): Promise<number> {
  const server = serveApp(fetch);
  try {
    const conn = await rawUpload(
      Number(new URL(server.base).port),
      type,
      length,
      undefined,
      target,
    );
    try {
      return await readStatus(conn);
    } finally {
      try {
        conn.close();
      } catch { /* closed on a timeout */ }
    }
  } finally {
    await server.close();
  }
}

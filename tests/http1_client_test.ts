/**
 * The pinned connector's HTTP/1.1 client (RFC 9112) against raw TCP origins
 * on loopback: message framing, interim answers, keep-alive and its limits,
 * and the malformed answers it must refuse rather than guess at.
 */
import assert from "node:assert/strict";
import { PinnedConnector, type PinnedResponse } from "../services/net/connector.ts";
import { bytes, serveRaw, sleep, writeAll } from "./support/origin.ts";
import { concat, type RecordingOrigin, serveRecording } from "./support/recording_origin.ts";

const BODY = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff);

async function get(connector: PinnedConnector, port: number, path = "/x", signal?: AbortSignal) {
  return await connector.request(
    new URL(`http://127.0.0.1:${port}${path}`),
    { address: "127.0.0.1", port },
    { method: "GET", headers: { accept: "image/*" }, signal },
  );
}

async function readAll(res: PinnedResponse): Promise<Uint8Array> {
  const body = new Uint8Array(await res.response.arrayBuffer());
  res.done();
  return body;
}

/** Runs `fn` with a connector and a recording origin answering `reply` to every request. */
async function withOrigin(
  reply: (n: number) => Uint8Array | string | { bytes: Uint8Array | string; close: boolean },
  fn: (connector: PinnedConnector, origin: RecordingOrigin) => Promise<void>,
) {
  let n = 0;
  const origin = serveRecording(() => {
    const r = reply(n++);
    return typeof r === "string" || r instanceof Uint8Array ? { bytes: r } : r;
  });
  const connector = new PinnedConnector();
  try {
    await fn(connector, origin);
  } finally {
    connector.close();
    await origin.close();
  }
}

function chunked(body: Uint8Array, sizes: number[]): Uint8Array {
  const parts: Uint8Array[] = [bytes("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")];
  let off = 0;
  for (const size of sizes) {
    parts.push(
      bytes(`${size.toString(16)};ext=1\r\n`),
      body.subarray(off, off + size),
      bytes("\r\n"),
    );
    off += size;
  }
  parts.push(bytes("0\r\nx-trailer: yes\r\n\r\n"));
  return concat(...parts);
}

Deno.test("HTTP/1.1 client: a chunked body (extensions, trailers) arrives whole and the connection is reused", async () => {
  const sizes = [1, 4096, 30_000, BODY.length - 34_097];
  await withOrigin(() => chunked(BODY, sizes), async (connector, origin) => {
    for (let i = 0; i < 3; i++) {
      const res = await get(connector, origin.port);
      assert.equal(res.response.status, 200);
      assert.deepEqual(await readAll(res), BODY);
    }
    assert.equal(origin.connections, 1);
  });
});

Deno.test("HTTP/1.1 client: a Content-Length body is read exactly, even when the origin writes it in pieces", async () => {
  const origin = serveRaw(async (conn) => {
    await writeAll(conn, `HTTP/1.1 200 OK\r\ncontent-length: ${BODY.length}\r\n\r\n`);
    for (let off = 0; off < BODY.length; off += 10_000) {
      await writeAll(conn, BODY.subarray(off, off + 10_000));
      await sleep(2);
    }
  });
  const connector = new PinnedConnector();
  try {
    assert.deepEqual(await readAll(await get(connector, origin.port)), BODY);
  } finally {
    connector.close();
    await origin.close();
  }
});

Deno.test("HTTP/1.1 client: an HTTP/1.0 answer without length ends at close and is not reused", async () => {
  await withOrigin(
    () => ({
      bytes: concat(bytes("HTTP/1.0 200 OK\r\ncontent-type: image/png\r\n\r\n"), BODY),
      close: true,
    }),
    async (connector, origin) => {
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(await readAll(await get(connector, origin.port)), BODY);
      }
      assert.equal(origin.connections, 2);
      assert.equal(connector.openConnections, 0);
    },
  );
});

Deno.test("HTTP/1.1 client: Connection: close is honoured", async () => {
  await withOrigin(
    () => ({
      bytes: "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi",
      close: true,
    }),
    async (connector, origin) => {
      for (let i = 0; i < 2; i++) {
        assert.equal(
          new TextDecoder().decode(await readAll(await get(connector, origin.port))),
          "hi",
        );
      }
      assert.equal(origin.connections, 2);
    },
  );
});

Deno.test("HTTP/1.1 client: interim 100 and 103 answers are skipped", async () => {
  await withOrigin(
    () =>
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n" +
      "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-final: 1\r\n\r\nabc",
    async (connector, origin) => {
      const res = await get(connector, origin.port);
      assert.equal(res.response.status, 200);
      assert.equal(res.response.headers.get("x-final"), "1");
      assert.equal(res.response.headers.get("link"), null);
      assert.equal(new TextDecoder().decode(await readAll(res)), "abc");
    },
  );
});

Deno.test("HTTP/1.1 client: bare LF line endings and folded header lines are understood", async () => {
  await withOrigin(
    () => "HTTP/1.1 200 OK\nx-folded: one\n  two\ncontent-length: 2\n\nok",
    async (connector, origin) => {
      const res = await get(connector, origin.port);
      assert.equal(res.response.headers.get("x-folded"), "one two");
      assert.equal(new TextDecoder().decode(await readAll(res)), "ok");
    },
  );
});

Deno.test("HTTP/1.1 client: 304 and 204 have no body and keep the connection", async () => {
  await withOrigin(
    (n) =>
      n === 0
        ? 'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\ncontent-length: 999\r\n\r\n'
        : "HTTP/1.1 204 No Content\r\n\r\n",
    async (connector, origin) => {
      const notModified = await get(connector, origin.port);
      assert.equal(notModified.response.status, 304);
      assert.equal(notModified.response.body, null);
      assert.equal(notModified.response.headers.get("etag"), '"v1"');
      notModified.done();
      const empty = await get(connector, origin.port);
      assert.equal(empty.response.status, 204);
      empty.done();
      assert.equal(origin.connections, 1);
    },
  );
});

Deno.test("HTTP/1.1 client: a kept-alive connection the origin closed meanwhile is replaced, once", async () => {
  await withOrigin(
    () => ({ bytes: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", close: true }),
    async (connector, origin) => {
      // The origin closes after answering without saying so: the pooled socket is dead.
      assert.equal(
        new TextDecoder().decode(await readAll(await get(connector, origin.port))),
        "ok",
      );
      await sleep(20);
      assert.equal(
        new TextDecoder().decode(await readAll(await get(connector, origin.port))),
        "ok",
      );
      assert.equal(origin.seen.length, 2);
      assert.equal(origin.connections, 2);
    },
  );
});

for (
  const [name, answer, pattern] of [
    [
      "conflicting Content-Length values",
      "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
      /Content-Length/,
    ],
    [
      "a negative Content-Length",
      "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
      /Content-Length/,
    ],
    [
      "whitespace before a header's colon",
      "HTTP/1.1 200 OK\r\ncontent-length : 2\r\n\r\nok",
      /malformed header/,
    ],
    [
      "a transfer coding it never asked for",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
      /Transfer-Encoding/,
    ],
    ["a status line that is not HTTP/1.x", "ICY 200 OK\r\n\r\n", /status line/],
    ["HTTP/2 in clear text", "HTTP/2 200\r\n\r\n", /status line/],
    [
      "a switch of protocols",
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n",
      /switched protocols/,
    ],
    [
      "a head that never ends",
      `HTTP/1.1 200 OK\r\n${"x-pad: ".padEnd(70_000, "a")}\r\n`,
      /longer than/,
    ],
  ] as const
) {
  Deno.test(`HTTP/1.1 client: refuses ${name}`, async () => {
    await withOrigin(() => answer, async (connector, origin) => {
      await assert.rejects(get(connector, origin.port), pattern);
      assert.equal(connector.openConnections, 0, "the socket is closed, not pooled");
    });
  });
}

Deno.test("HTTP/1.1 client: a body cut short errors instead of ending quietly", async () => {
  for (
    const answer of [
      "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nabc",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    ]
  ) {
    await withOrigin(() => ({ bytes: answer, close: true }), async (connector, origin) => {
      const res = await get(connector, origin.port);
      await assert.rejects(res.response.arrayBuffer(), Error, answer);
      res.done();
      assert.equal(connector.openConnections, 0);
    });
  }
});

Deno.test("HTTP/1.1 client: an abort while waiting for the head rejects at once and closes the socket", async () => {
  const origin = serveRaw((_conn, signal) => sleep(10_000, signal));
  const connector = new PinnedConnector();
  try {
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error("stop")), 100);
    const started = Date.now();
    await assert.rejects(get(connector, origin.port, "/x", abort.signal), /stop/);
    assert.ok(Date.now() - started < 1_000);
    assert.equal(connector.openConnections, 0);
  } finally {
    connector.close();
    await origin.close();
  }
});

Deno.test("HTTP/1.1 client: a body left unread closes its connection instead of pooling it", async () => {
  await withOrigin(
    () => concat(bytes(`HTTP/1.1 200 OK\r\ncontent-length: ${BODY.length}\r\n\r\n`), BODY),
    async (connector, origin) => {
      const first = await get(connector, origin.port);
      await first.response.body!.cancel();
      first.done();
      assert.deepEqual(await readAll(await get(connector, origin.port)), BODY);
      assert.equal(origin.connections, 2);
      assert.equal(connector.openConnections, 1, "the second, fully read, is pooled");
    },
  );
});

Deno.test("HTTP/1.1 client: header values go out as the octets they hold (latin1), not re-encoded as UTF-8", async () => {
  let received = new Uint8Array(0);
  const origin = serveRaw(async (conn) => {
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    received = buf.slice(0, n ?? 0);
    await writeAll(conn, "HTTP/1.1 204 No Content\r\n\r\n");
  }, { readRequest: false });
  const connector = new PinnedConnector();
  try {
    const res = await connector.request(
      new URL(`http://127.0.0.1:${origin.port}/x`),
      { address: "127.0.0.1", port: origin.port },
      { headers: { "if-none-match": 'W/"caf\u00e9"' } },
    );
    res.done();
    const expected = bytes('if-none-match: W/"caf\u00e9"\r\n');
    const at = received.findIndex((_, i) => expected.every((b, j) => received[i + j] === b));
    assert.ok(at >= 0, `request head: ${JSON.stringify(String.fromCharCode(...received))}`);
  } finally {
    connector.close();
    await origin.close();
  }
});

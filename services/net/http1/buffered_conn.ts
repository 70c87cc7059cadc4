/** Size of each socket read: large enough that most images arrive in a few reads. */
const READ_BYTES = 64 * 1024;

/**
 * A socket with a push-back buffer, for reading HTTP/1.1 framing.
 *
 * Socket reads land in one scratch buffer per connection and are copied
 * out at their exact size: body chunks go to the blob store, which keeps
 * them after the next read and hands whole buffers to its writer thread
 * without copying. A fresh 64 KiB buffer per read instead cost more in
 * allocation, garbage collection and cloning than the copy (measured in V8
 * profiles of the ingest benchmark).
 */
export class BufferedConn {
  readonly conn: Deno.Conn;
  #scratch: Uint8Array | null = null;
  #pending: Uint8Array | null = null;
  /** True while `#pending` is a view of the scratch buffer (the next socket read would overwrite it). */
  #pendingInScratch = false;
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Bytes read from the socket but not consumed yet. */
  get buffered(): number {
    return this.#pending?.length ?? 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Buffered bytes or else one socket read, at most `max` bytes; null at end of stream. */
  async read(max = Number.POSITIVE_INFINITY): Promise<Uint8Array | null> {
    let bytes = this.#pending;
    this.#pending = null;
    if (bytes !== null && this.#pendingInScratch) bytes = copyOf(bytes);
    this.#pendingInScratch = false;
    if (bytes === null) {
      const view = await this.#readScratch();
      if (view === null) return null;
      bytes = copyOf(view);
    }
    if (bytes.length > max) {
      this.#pending = bytes.subarray(max);
      return bytes.subarray(0, max);
    }
    return bytes;
  }

  /**
   * Fills the start of `target` with buffered bytes or else one socket read
   * straight into it (no copy); resolves with the count, null at end of stream.
   */
  async readInto(target: Uint8Array): Promise<number | null> {
    const pending = this.#pending;
    if (pending === null) return await this.conn.read(target);
    const n = Math.min(pending.length, target.length);
    target.set(pending.subarray(0, n));
    this.#pending = n < pending.length ? pending.subarray(n) : null;
    if (this.#pending === null) this.#pendingInScratch = false;
    return n;
  }

  /** One socket read into the scratch buffer: valid until the next read. */
  async #readScratch(): Promise<Uint8Array | null> {
    this.#scratch ??= new Uint8Array(READ_BYTES);
    const n = await this.conn.read(this.#scratch);
    return n === null ? null : this.#scratch.subarray(0, n);
  }

  /** Puts bytes back in front of whatever is buffered. */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#pending = this.#pending ? concat(bytes, this.#pending) : bytes;
    this.#pendingInScratch = false;
  }

  /**
   * Reads up to the empty line that ends a message head (CRLF CRLF, or bare
   * LFs, which RFC 9112 section 2.2 lets a recipient accept) and returns the
   * head without that empty line. Null when the peer closed before sending a
   * byte; throws when it closed mid-head or the head exceeds `maxBytes`.
   */
  async readHead(maxBytes: number): Promise<Uint8Array | null> {
    let head: Uint8Array = new Uint8Array(0);
    for (;;) {
      const buffered = this.#pending;
      const inScratch = buffered === null || this.#pendingInScratch;
      this.#pending = null;
      this.#pendingInScratch = false;
      // Straight from the scratch buffer: the usual first read holds the
      // whole head and the start of the body. The body's start stays there
      // until the body reader copies it out (into the body's own buffer,
      // when it has a length): no socket read happens before that.
      const chunk = buffered ?? await this.#readScratch();
      if (chunk === null) {
        if (head.length === 0) return null;
        throw new Http1Error("the connection closed in the middle of the response head");
      }
      const from = Math.max(0, head.length - 3);
      const joined = head.length === 0 ? chunk : concat(head, chunk);
      const end = findHeadEnd(joined, from);
      if (end !== null) {
        const rest = joined.subarray(end.next);
        this.#pending = rest.length > 0 ? rest : null;
        this.#pendingInScratch = this.#pending !== null && joined === chunk && inScratch;
        return copyOf(joined.subarray(0, end.at));
      }
      if (joined.length > maxBytes) {
        throw new Http1Error(`the response head is longer than ${maxBytes} bytes`);
      }
      head = joined === chunk ? copyOf(chunk) : joined;
    }
  }

  /** One line without its line ending (CRLF or LF). For chunk sizes and trailers. */
  async readLine(maxBytes: number): Promise<string> {
    let line: Uint8Array = new Uint8Array(0);
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) throw new Http1Error("the connection closed in the middle of a line");
      const lf = chunk.indexOf(0x0a);
      const part = lf < 0 ? chunk : chunk.subarray(0, lf);
      line = line.length === 0 ? part : concat(line, part);
      if (line.length > maxBytes) throw new Http1Error(`a line is longer than ${maxBytes} bytes`);
      if (lf >= 0) {
        this.unread(chunk.subarray(lf + 1));
        const end = line.length > 0 && line[line.length - 1] === 0x0d
          ? line.length - 1
          : line.length;
        return latin1(line.subarray(0, end));
      }
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed by the peer or an abort.
    }
  }
}

/** A response that breaks HTTP/1.1 framing or syntax. */
export class Http1Error extends Error {
  override name = "Http1Error";
}

/** Decodes bytes one to one (header bytes are octets, not UTF-8). */
export function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** Where the head ends (`at`) and the body starts (`next`), searching from `from`. */
function findHeadEnd(bytes: Uint8Array, from: number): { at: number; next: number } | null {
  for (let i = bytes.indexOf(0x0a, from); i >= 0; i = bytes.indexOf(0x0a, i + 1)) {
    if (bytes[i + 1] === 0x0a) return { at: i + 1, next: i + 2 };
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return { at: i + 1, next: i + 3 };
  }
  return null;
}

/** An exact-size copy in a buffer of its own (faster than TypedArray slice in V8 here). */
function copyOf(view: Uint8Array): Uint8Array {
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

import type { BufferedConn } from "./buffered_conn.ts";

interface Idle {
  conn: BufferedConn;
  since: number;
}

/**
 * Idle keep-alive connections, by key (scheme, pinned address, port and, for
 * TLS, the server name). Newest first out, so a burst reuses warm sockets
 * and the rest age out. Bounded per key and overall; the oldest go first.
 */
export class IdlePool {
  readonly #idle = new Map<string, Idle[]>();
  readonly #maxPerKey: number;
  readonly #maxTotal: number;
  readonly #idleMs: number;
  #total = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(options: { maxPerKey: number; maxTotal: number; idleMs: number }) {
    this.#maxPerKey = options.maxPerKey;
    this.#maxTotal = options.maxTotal;
    this.#idleMs = options.idleMs;
  }

  get size(): number {
    return this.#total;
  }

  /** A connection that was idle for less than idleMs, or null. */
  take(key: string): BufferedConn | null {
    const list = this.#idle.get(key);
    const now = Date.now();
    while (list && list.length > 0) {
      const idle = list.pop()!;
      this.#total--;
      if (list.length === 0) this.#idle.delete(key);
      if (now - idle.since < this.#idleMs && !idle.conn.closed) return idle.conn;
      idle.conn.close();
    }
    return null;
  }

  put(key: string, conn: BufferedConn): void {
    let list = this.#idle.get(key);
    if (!list) this.#idle.set(key, list = []);
    list.push({ conn, since: Date.now() });
    this.#total++;
    if (list.length > this.#maxPerKey) this.#drop(list, key);
    if (this.#total > this.#maxTotal) this.#dropOldest();
    this.#startTimer();
  }

  close(): void {
    for (const list of this.#idle.values()) for (const idle of list) idle.conn.close();
    this.#idle.clear();
    this.#total = 0;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #drop(list: Idle[], key: string): void {
    list.shift()!.conn.close();
    this.#total--;
    if (list.length === 0) this.#idle.delete(key);
  }

  #dropOldest(): void {
    let oldest: [string, Idle[]] | null = null;
    for (const entry of this.#idle) {
      if (!oldest || entry[1][0].since < oldest[1][0].since) oldest = entry;
    }
    if (oldest) this.#drop(oldest[1], oldest[0]);
  }

  /** Closes expired sockets now and then, so idle origins get their file descriptors back. */
  #startTimer(): void {
    if (this.#timer !== null) return;
    const timer = setInterval(() => {
      const cutoff = Date.now() - this.#idleMs;
      for (const [key, list] of this.#idle) {
        while (list.length > 0 && list[0].since <= cutoff) this.#drop(list, key);
      }
      if (this.#total === 0 && this.#timer !== null) {
        clearInterval(this.#timer);
        this.#timer = null;
      }
    }, Math.max(1_000, this.#idleMs / 2));
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}

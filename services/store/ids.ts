import { createHash } from "node:crypto";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
let lastTime = 0;
let lastRandom: number[] = [];

/**
 * A ULID: 48-bit millisecond time then 80 random bits, Crockford base32.
 * Monotonic within a process (same millisecond increments the random part),
 * so KV prefix scans over these ids come back in creation order.
 */
export function ulid(now = Date.now()): string {
  if (now <= lastTime) {
    now = lastTime;
    increment(lastRandom);
  } else {
    lastTime = now;
    lastRandom = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b & 31);
  }
  let time = "";
  for (let i = 0, t = now; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  return time + lastRandom.map((d) => CROCKFORD[d]).join("");
}

function increment(digits: number[]) {
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i] < 31) {
      digits[i]++;
      return;
    }
    digits[i] = 0;
  }
}

/** True for strings shaped like a ULID (used to reject bad job ids early). */
export function isUlid(s: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{26}$/.test(s);
}

/** Hex SHA-256 of a URL string, exactly as submitted. */
export function urlHash(url: string): string {
  return createHash("sha256").update(url).digest("hex");
}

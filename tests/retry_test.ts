import assert from "node:assert/strict";
import { FAILURE_REASONS } from "../services/fetch/reasons.ts";
import { isTransientReason, parseRetryAfter, retryDelayMs } from "../services/fetch/retry.ts";

const OPTS = { baseMs: 1_000, capMs: 60_000, retryAfterCapMs: 60_000 };
const low = () => 0;
const high = () => 0.999999;

Deno.test("retryDelayMs() doubles the backoff with each attempt", () => {
  const full = [1, 2, 3, 4, 5].map((n) => retryDelayMs(n, {}, { ...OPTS, random: high }));
  assert.deepEqual(full, [1_000, 2_000, 4_000, 8_000, 16_000]);
});

Deno.test("retryDelayMs() jitters between half and all of the backoff", () => {
  assert.equal(retryDelayMs(3, {}, { ...OPTS, random: low }), 2_000);
  assert.equal(retryDelayMs(3, {}, { ...OPTS, random: high }), 4_000);
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) {
    const d = retryDelayMs(3, {}, { ...OPTS, random });
    assert.ok(d >= 2_000 && d <= 4_000, `delay ${d}`);
    seen.add(d);
  }
  assert.ok(seen.size > 100, "jitter actually spreads the delays");
});

Deno.test("retryDelayMs() never exceeds capMs, even for huge attempt numbers", () => {
  for (const n of [7, 20, 100, 10_000]) {
    const d = retryDelayMs(n, {}, { ...OPTS, capMs: 30_000, random: high });
    assert.equal(d, 30_000, `attempt ${n}`);
    assert.ok(Number.isFinite(d));
  }
});

Deno.test("retryDelayMs() treats attempt numbers below 1 as the first attempt", () => {
  assert.equal(retryDelayMs(0, {}, { ...OPTS, random: high }), 1_000);
});

Deno.test("retryDelayMs() waits at least as long as Retry-After asks", () => {
  assert.equal(retryDelayMs(1, { retryAfterMs: 5_000 }, { ...OPTS, random: high }), 5_000);
  // A short Retry-After does not shorten the backoff.
  assert.equal(retryDelayMs(4, { retryAfterMs: 1_000 }, { ...OPTS, random: high }), 8_000);
});

Deno.test("retryDelayMs() caps Retry-After at retryAfterCapMs", () => {
  const d = retryDelayMs(1, { retryAfterMs: 3_600_000 }, {
    ...OPTS,
    retryAfterCapMs: 60_000,
    random: high,
  });
  assert.equal(d, 60_000);
  assert.equal(
    retryDelayMs(1, { retryAfterMs: 10_000 }, { ...OPTS, retryAfterCapMs: 2_000, random: high }),
    2_000,
  );
});

Deno.test("parseRetryAfter() reads delta-seconds", () => {
  assert.equal(parseRetryAfter("1"), 1_000);
  assert.equal(parseRetryAfter(" 120 "), 120_000);
  assert.equal(parseRetryAfter("0"), 0);
});

Deno.test("parseRetryAfter() reads an HTTP date relative to now", () => {
  const now = Date.parse("2026-11-23T12:00:00Z");
  assert.equal(parseRetryAfter("Mon, 23 Nov 2026 12:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Monday, 23-Nov-26 12:01:00 GMT", now), 60_000);
  assert.equal(parseRetryAfter("Mon, 23 Nov 2026 11:00:00 GMT", now), 0, "past dates mean now");
});

Deno.test("parseRetryAfter() ignores absent and malformed values", () => {
  for (const v of [null, undefined, "", "soon", "-5", "1.5", "5 minutes", "2026-11-23T12:00:00Z"]) {
    assert.equal(parseRetryAfter(v, 0), undefined, JSON.stringify(v));
  }
});

Deno.test("isTransientReason() marks timeouts, connection trouble, 408, 429 and 5xx as transient", () => {
  for (const r of ["timeout", "unreachable", "truncated", "storage_error"] as const) {
    assert.equal(isTransientReason(r), true, r);
  }
  for (
    const r of ["http_408", "http_429", "http_500", "http_502", "http_503", "http_599"] as const
  ) {
    assert.equal(isTransientReason(r), true, r);
  }
});

Deno.test("isTransientReason() marks other failures as permanent", () => {
  const permanent = FAILURE_REASONS.filter(
    (r) => !["timeout", "unreachable", "truncated", "storage_error"].includes(r),
  );
  for (const r of permanent) assert.equal(isTransientReason(r), false, r);
  for (
    const r of ["http_400", "http_401", "http_403", "http_404", "http_410", "http_304"] as const
  ) {
    assert.equal(isTransientReason(r), false, r);
  }
});

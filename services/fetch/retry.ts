import type { FailureReason } from "./reasons.ts";

/**
 * Whether a failure may go away if the same URL is tried again later:
 * timeouts, connection failures, truncated bodies, storage trouble, and the
 * HTTP statuses that mean "not now" (408, 429, 5xx). Everything else
 * (other 4xx, refused addresses, bad URLs, non-images, size limits) is a
 * property of the URL or its content and would fail the same way again.
 */
export function isTransientReason(reason: FailureReason): boolean {
  switch (reason) {
    case "timeout":
    case "unreachable":
    case "truncated":
    case "storage_error":
      return true;
  }
  const status = httpStatusOf(reason);
  return status !== null && (status === 408 || status === 429 || status >= 500);
}

function httpStatusOf(reason: FailureReason): number | null {
  const m = /^http_(\d{3})$/.exec(reason);
  return m ? Number(m[1]) : null;
}

/** Tuning for {@link retryDelayMs}. */
export interface RetryDelayOptions {
  /** Delay after the first failed attempt, before jitter. */
  baseMs: number;
  /** Largest backoff delay. */
  capMs: number;
  /** Largest delay a Retry-After header can ask for (default setting: 60 s). */
  retryAfterCapMs: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * How long to wait before the next attempt after attempt number
 * `attemptNumber` (1 = the first attempt) failed with `result`.
 *
 * Exponential backoff, `baseMs * 2^(attemptNumber-1)` capped at `capMs`, with
 * "equal jitter": a uniform pick in [half, full] of that, so retries of many
 * URLs from one host spread out but never come back sooner than half the
 * backoff. When the origin sent Retry-After (kept on 429 and 503 answers)
 * the delay is at least that long, capped at `retryAfterCapMs` so one origin
 * cannot park work for hours.
 */
export function retryDelayMs(
  attemptNumber: number,
  result: { retryAfterMs?: number },
  opts: RetryDelayOptions,
): number {
  const random = opts.random ?? Math.random;
  const exponent = Math.max(0, Math.floor(attemptNumber) - 1);
  // Math.min before the power would overflow to Infinity for large attempts.
  const backoff = Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(exponent, 52));
  const jittered = backoff / 2 + random() * (backoff / 2);
  if (result.retryAfterMs === undefined) return Math.round(jittered);
  const asked = Math.min(Math.max(0, result.retryAfterMs), opts.retryAfterCapMs);
  return Math.round(Math.max(jittered, asked));
}

/**
 * Parses a Retry-After header value into milliseconds from `now`: either
 * delta-seconds (`120`) or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`).
 * A date in the past gives 0. Returns undefined when absent or unparsable.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // HTTP dates always name the weekday and GMT; requiring that keeps odd
  // inputs like "5 minutes" or "-1" from being read as dates by Date.parse.
  if (!/^[A-Za-z]{3,9},? .*GMT$/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

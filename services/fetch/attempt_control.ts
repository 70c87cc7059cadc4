import type { FailureReason } from "./reasons.ts";

/** Why an attempt failed, before it is dressed up as an AttemptResult. */
export interface Failure {
  reason: FailureReason;
  detail: string;
  retryAfterMs?: number;
}

/** Thrown inside an attempt to unwind with a known failure. */
export class FetchFailure extends Error {
  constructor(readonly failure: Failure) {
    super(`${failure.reason}: ${failure.detail}`);
  }
}

/**
 * One interval that checks the deadlines of every running attempt. Timers
 * per attempt (total, connect, and a stall timer re-armed per chunk) showed
 * up in profiles at thousands of small downloads per second; a shared tick
 * costs a few comparisons per attempt instead. It runs only while attempts
 * are active, so an idle fetcher holds no timer. Deadlines fire up to one
 * tick late, which is noise next to timeouts measured in seconds.
 */
export class TimeoutClock {
  readonly #tickMs: number;
  readonly #active = new Set<AttemptControl>();
  #interval: ReturnType<typeof setInterval> | undefined;

  constructor(tickMs = 20) {
    this.#tickMs = tickMs;
  }

  /** Starts checking `control` until {@link remove}. */
  add(control: AttemptControl): void {
    this.#active.add(control);
    this.#interval ??= setInterval(() => {
      const now = performance.now();
      for (const c of this.#active) c.check(now);
    }, this.#tickMs);
  }

  /** Stops checking `control`; the interval stops with the last one. */
  remove(control: AttemptControl): void {
    this.#active.delete(control);
    if (this.#active.size === 0 && this.#interval !== undefined) {
      clearInterval(this.#interval);
      this.#interval = undefined;
    }
  }
}

interface Deadline {
  at: number;
  detail: string;
}

/**
 * The one place an attempt fails. The first failure wins and aborts the
 * attempt's signal, which cancels DNS, the request and the body read, so
 * whatever was waiting unwinds and the socket is freed. Later errors that
 * are only consequences of that abort ("signal aborted", "body cancelled")
 * are then reported as the first failure, not as themselves.
 */
export class AttemptControl {
  readonly #abort = new AbortController();
  readonly #clock: TimeoutClock;
  readonly #external: AbortSignal | undefined;
  readonly #onExternalAbort = () => this.fail("timeout", "attempt aborted by the caller");
  readonly #deadlines = new Map<number, Deadline>();
  #nextDeadline = 0;
  #stallMs = Infinity;
  #waitingSince: number | null = null;
  #failure: Failure | null = null;

  constructor(clock: TimeoutClock, external?: AbortSignal) {
    this.#clock = clock;
    this.#external = external;
    clock.add(this);
    if (external?.aborted) this.#onExternalAbort();
    else external?.addEventListener("abort", this.#onExternalAbort, { once: true });
  }

  /** Aborted on the first failure; pass it to every await that can block. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** The first failure, if any. */
  get failure(): Failure | null {
    return this.#failure;
  }

  /** Records a failure (unless one is already recorded), aborts, and returns the throwable. */
  fail(reason: FailureReason, detail: string, retryAfterMs?: number): FetchFailure {
    if (!this.#failure) {
      this.#failure = retryAfterMs === undefined
        ? { reason, detail }
        : { reason, detail, retryAfterMs };
      this.#abort.abort(new FetchFailure(this.#failure));
    }
    return new FetchFailure(this.#failure);
  }

  /**
   * The recorded failure when there is one (the error is then a consequence
   * of it), otherwise the result of `otherwise`.
   */
  explain(err: unknown, otherwise: () => FetchFailure): FetchFailure {
    if (err instanceof FetchFailure) return err;
    if (this.#failure) return new FetchFailure(this.#failure);
    return otherwise();
  }

  /** Fails with `timeout` after `ms` unless the returned function is called first. */
  deadline(ms: number, detail: string): () => void {
    const key = this.#nextDeadline++;
    this.#deadlines.set(key, { at: performance.now() + ms, detail });
    return () => this.#deadlines.delete(key);
  }

  /** A watchdog for waits on the origin; see {@link StallWatch}. */
  stallWatch(ms: number): StallWatch {
    this.#stallMs = ms;
    return {
      arm: () => {
        this.#waitingSince = performance.now();
      },
      disarm: () => {
        this.#waitingSince = null;
      },
      stop: () => {
        this.#waitingSince = null;
        this.#stallMs = Infinity;
      },
    };
  }

  /** Called by the clock: fails the attempt if a deadline has passed. */
  check(now: number): void {
    if (this.#failure) return;
    for (const d of this.#deadlines.values()) {
      if (now >= d.at) {
        this.fail("timeout", d.detail);
        return;
      }
    }
    if (this.#waitingSince !== null && now - this.#waitingSince >= this.#stallMs) {
      this.fail("timeout", `no body byte for ${Math.round(now - this.#waitingSince)} ms`);
    }
  }

  /** Stops the clock and forgets the caller's signal. Call when the attempt ends. */
  dispose(): void {
    this.#clock.remove(this);
    this.#deadlines.clear();
    this.#external?.removeEventListener("abort", this.#onExternalAbort);
  }
}

/**
 * Fails the attempt when a single wait on the origin (between `arm()` and
 * `disarm()`) lasts longer than the stall timeout. Arming costs a timestamp.
 */
export interface StallWatch {
  /** A wait on the origin begins. */
  arm(): void;
  /** The wait ended (bytes or end of body arrived). */
  disarm(): void;
  /** Stops for good. */
  stop(): void;
}

/** Rate and time left, from how the count of finished URLs moves over time. */

export interface Reading {
  /** URLs stored or failed so far. */
  done: number;
  total: number;
  /** Finished per second over the recent window; undefined until it can be told. */
  rate?: number;
  /** Seconds left at that rate; undefined without a rate, 0 when nothing is left. */
  etaSeconds?: number;
}

/**
 * Keeps (time, done) samples of the last `windowMs` so the rate follows
 * the current pace rather than the average since the start (a job that
 * began with many already-stored URLs would otherwise look fast forever).
 */
export class RateMeter {
  #samples: { at: number; done: number }[] = [];

  constructor(private readonly windowMs = 10_000, private readonly minSpanMs = 1_000) {}

  record(done: number, total: number, at: number): Reading {
    const samples = this.#samples;
    samples.push({ at, done });
    // Keep one sample older than the window so the span covers it whole.
    while (samples.length > 2 && at - samples[1].at >= this.windowMs) samples.shift();
    const first = samples[0];
    const span = at - first.at;
    const left = Math.max(0, total - done);
    const rate = span > 0 ? Math.max(0, done - first.done) / (span / 1000) : undefined;
    // At the end any span will do: the last line should say how fast it went.
    if (left === 0) return { done, total, rate, etaSeconds: 0 };
    // Early on, a few quick completions would promise an absurd rate.
    if (span < this.minSpanMs || rate === undefined) return { done, total };
    return { done, total, rate, etaSeconds: rate > 0 ? left / rate : undefined };
  }
}

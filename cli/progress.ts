/**
 * Shows progress while a job runs: a redrawn bar on a terminal
 * (cli-progress), plain lines at a fixed interval otherwise, so logs and
 * pipes get a readable record instead of control codes.
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import process from "node:process";
import { formatCount, formatEta, formatRate, progressLine } from "./format.ts";
import { RateMeter, type Reading } from "./meter.ts";
import type { ProgressData } from "./types.ts";

export interface ProgressView {
  update(data: ProgressData): void;
  /** Final redraw or line; the view writes nothing after. */
  stop(): void;
}

function done(data: ProgressData): number {
  return data.counts.complete + data.counts.failed;
}

/** Plain lines: one at once, then one per `intervalMs` when something changed, and a last one. */
export function plainLines(
  write: (line: string) => void,
  intervalMs: number,
  now: () => number = Date.now,
): ProgressView {
  const meter = new RateMeter();
  let latest: { reading: Reading; failed: number } | undefined;
  let printedKey = "";
  // Only counts that moved make a new line: a rate that drifts while
  // nothing finishes is not news in a log.
  const flush = () => {
    if (!latest) return;
    const key = `${latest.reading.done}/${latest.reading.total}/${latest.failed}`;
    if (key === printedKey) return;
    printedKey = key;
    write(progressLine(latest.reading, latest.failed));
  };
  const timer = setInterval(flush, intervalMs);
  return {
    update(data) {
      const first = latest === undefined;
      latest = { reading: meter.record(done(data), data.total, now()), failed: data.counts.failed };
      if (first) flush();
    },
    stop() {
      clearInterval(timer);
      flush();
    },
  };
}

/** The terminal bar: done/total, failed, rate and ETA, redrawn in place. */
export function terminalBar(stream: NodeJS.WriteStream = process.stdout): ProgressView {
  const meter = new RateMeter();
  const bar = new cliProgress.SingleBar({
    stream,
    format: "{bar} {percentage}% | {done}/{all} | {failedCount} failed | {speed} | ETA {left}",
    hideCursor: true,
    barsize: 30,
    fps: 8,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  const tokens = (r: Reading, failed: number) => ({
    done: formatCount(r.done),
    all: formatCount(r.total),
    failedCount: formatCount(failed),
    speed: formatRate(r.rate),
    left: formatEta(r.etaSeconds),
  });
  return {
    update(data) {
      const r = meter.record(done(data), data.total, Date.now());
      if (!started) {
        bar.start(Math.max(1, r.total), r.done, tokens(r, data.counts.failed));
        started = true;
      } else {
        bar.setTotal(Math.max(1, r.total));
        bar.update(r.done, tokens(r, data.counts.failed));
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

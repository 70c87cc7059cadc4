/** Text for progress and summaries; pure functions so they can be tested as strings. */
import type { Reading } from "./meter.ts";

/** `7s`, `3m 05s`, `2h 03m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** `12.3/s` under 100 a second, whole numbers above; `-` while unknown. */
export function formatRate(rate: number | undefined): string {
  if (rate === undefined) return "-/s";
  return rate < 100 ? `${rate.toFixed(1)}/s` : `${Math.round(rate)}/s`;
}

export function formatEta(eta: number | undefined): string {
  return eta === undefined ? "-" : formatDuration(eta);
}

/** Thousands separated with commas, whatever the locale. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function percent(done: number, total: number): string {
  if (total === 0) return "100%";
  const p = (done / total) * 100;
  return `${p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

/** One plain progress line, for logs and pipes. */
export function progressLine(r: Reading, failed: number): string {
  return `progress: ${formatCount(r.done)}/${formatCount(r.total)} done (${
    percent(r.done, r.total)
  }), ${formatCount(failed)} failed, ${formatRate(r.rate)}, ETA ${formatEta(r.etaSeconds)}`;
}

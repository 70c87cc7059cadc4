/** What every benchmark gets, and the helpers they share. */
import type { FixtureManifest } from "../lib/fixtures.ts";
import type { Listening, Resources } from "../lib/proc.ts";
import { sleep, withTimeout } from "../lib/proc.ts";

export { sleep, withTimeout };

export interface Ctx {
  res: Resources;
  log: (line: string) => void;
  /** Loaded on demand: ingest, retrieval and submit need them. */
  fixtures(): Promise<{ dir: string; manifest: FixtureManifest }>;
  /** The shared static origin (its own process), started on first use. */
  origin(): Promise<Listening>;
}

/** One line of the results table. */
export interface Row {
  benchmark: string;
  metric: string;
  service: string;
  baseline: string;
  /** Service relative to baseline, as the target states it. */
  ratio: number | null;
  target: string;
  pass: boolean | null;
}

export interface BenchResult {
  rows: Row[];
  settings: Record<string, unknown>;
  details: Record<string, unknown>;
}

/** The service settings every benchmark uses; ingest raises PER_HOST_CONCURRENCY. */
export function serviceEnv(dataDir: string, originPort: number | null, extra = {}) {
  return {
    DATA_DIR: dataDir,
    WORKER_CONCURRENCY: "32",
    ...(originPort ? { FETCH_ALLOW_HOSTS: `127.0.0.1:${originPort}` } : {}),
    // Stop at once when the benchmark is done with it.
    SHUTDOWN_GRACE_MS: "0",
    ...extra,
  } as Record<string, string>;
}

export async function getJson<T>(url: string, timeoutMs = 10_000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return await res.json() as T;
}

export interface JobView {
  id: string;
  status: "pending" | "in-progress" | "complete";
  created: string;
  finished: string | null;
  total: number;
  counts: { pending: number; complete: number; failed: number };
}

/** POST /images with a prepared JSON body; resolves at the 202 with its timing. */
export async function submit(base: string, body: string): Promise<{ job: JobView; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/images`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(60_000),
  });
  const ms = performance.now() - t0;
  const text = await res.text();
  if (res.status !== 202) throw new Error(`POST /images: ${res.status} ${text.slice(0, 500)}`);
  return { job: JSON.parse(text) as JobView, ms };
}

/** Polls a job every `intervalMs` until it is complete; bounded by `timeoutMs`. */
export async function waitForJob(
  base: string,
  id: string,
  intervalMs: number,
  timeoutMs: number,
): Promise<JobView> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const job = await getJson<JobView>(`${base}/jobs/${id}`);
    if (job.status === "complete") return job;
    if (performance.now() > deadline) {
      throw new Error(
        `job ${id} not complete after ${timeoutMs} ms: ${JSON.stringify(job.counts)}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** Why the failed items of a job failed (first page), for the report. */
export async function failureReasons(base: string, id: string): Promise<Record<string, number>> {
  const page = await getJson<{ items: { reason?: string }[] }>(
    `${base}/jobs/${id}/items?state=failed&limit=100`,
  );
  const out: Record<string, number> = {};
  for (const it of page.items) out[it.reason ?? "?"] = (out[it.reason ?? "?"] ?? 0) + 1;
  return out;
}

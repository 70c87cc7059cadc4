/** `ingest`: submit a list, follow the job, save results, summarise, and choose the exit code. */
import { dirname } from "node:path";
import { ServiceClient } from "./api.ts";
import { type IngestOptions, parseArgs } from "./args.ts";
import { ConnectionError, ServiceError, UsageError } from "./errors.ts";
import { followJob, type FollowResult } from "./follow.ts";
import { contentType, detectFormat, idempotencyKey, readInput, userPath } from "./input.ts";
import { plainLines, type ProgressView, terminalBar } from "./progress.ts";
import { writeResults } from "./results.ts";
import { exitCodeFor, FailureLog, formatSummary } from "./summary.ts";
import type { JobSummary } from "./types.ts";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdout is a terminal: a redrawn bar then, plain lines otherwise. */
  terminal: boolean;
}

/** Exit code: 0 all stored, 1 some URLs failed, 2 usage or connection errors. */
export async function runIngest(argv: string[], io: Io): Promise<number> {
  const parsed = parseArgs(argv, { out: io.out, err: io.err });
  if ("exit" in parsed) return parsed.exit;
  try {
    return await ingest(parsed.run, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConnectionError) {
      io.err(`ingest: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ServiceError) {
      io.err(`ingest: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

async function ingest(opts: IngestOptions, io: Io): Promise<number> {
  if (opts.out) await checkWritableDir(opts.out);
  const input = await readInput(opts.input);
  const source = opts.input === "-" ? "standard input" : opts.input;
  const text = new TextDecoder().decode(input.bytes);
  if (text.trim() === "") throw new UsageError(`${source} is empty`);
  const format = opts.format ?? detectFormat(input, text);
  const client = new ServiceClient(opts.server, opts.apiKey);
  const key = idempotencyKey(opts.server, format, opts.refresh, input.bytes);

  const started = Date.now();
  const submitted = await submitWithRetries(
    () => client.submit(input.bytes, contentType(format), key, opts.refresh),
  );
  io.out(
    `Job ${submitted.id}: ${submitted.total} URLs from ${source} (${format}) at ${opts.server}\n`,
  );

  const view: ProgressView = io.terminal
    ? terminalBar()
    : plainLines((line) => io.out(line + "\n"), opts.intervalMs);
  const failures = new FailureLog();
  view.update(submitted);
  // Ctrl-C stops following, not the job: say how to pick it up again.
  const interrupted = () => {
    view.stop();
    io.err(
      `\ningest: stopped following job ${submitted.id}; it goes on in the service. ` +
        `Run the same command again to follow it (same list, same job).\n`,
    );
    if (io.terminal) io.out("\x1b[?25h"); // the bar hides the cursor
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  let followed: FollowResult;
  try {
    followed = await followJob(client, submitted.id, {
      progress: (p) => view.update(p),
      failed: (f) => failures.add(f),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", interrupted);
    view.stop();
  }
  const { job } = followed;
  if (followed.via === "polling") {
    io.err("ingest: this service has no job event stream; progress came from polling the job\n");
  }

  // The summary is worth showing even when saving the results fails.
  let resultsError: unknown;
  if (opts.out) {
    try {
      await writeResults(client, job.id, opts.out);
    } catch (err) {
      resultsError = err;
    }
  }
  io.out(
    formatSummary({
      job,
      failures,
      elapsedSeconds: (Date.now() - started) / 1000,
      resultsPath: resultsError ? undefined : opts.out,
    }) + "\n",
  );
  if (resultsError instanceof ServiceError) {
    throw new ServiceError(resultsError.status, `results not saved: ${resultsError.message}`);
  }
  if (resultsError) throw resultsError;
  return exitCodeFor(job);
}

/**
 * A POST that got no answer may still have created the job: sending it
 * again with the same Idempotency-Key returns that job rather than a second.
 */
async function submitWithRetries(submit: () => Promise<JobSummary>): Promise<JobSummary> {
  const delays = [500, 1500];
  for (let attempt = 0;; attempt++) {
    try {
      return await submit();
    } catch (err) {
      const transient = err instanceof ConnectionError ||
        (err instanceof ServiceError && [502, 503, 504].includes(err.status));
      if (!transient || attempt >= delays.length) throw err;
      await new Promise((r) => setTimeout(r, delays[attempt]));
    }
  }
}

/** Refuses an --out whose directory is missing before any work is sent. */
async function checkWritableDir(out: string): Promise<void> {
  const dir = dirname(userPath(out));
  try {
    if ((await Deno.stat(dir)).isDirectory) return;
  } catch {
    // Reported below.
  }
  throw new UsageError(`--out ${out}: no directory ${dir}`);
}

/**
 * Follows a job to its end through `GET /jobs/{id}/events` (SSE).
 *
 * - A dropped stream, or one silent for longer than three heartbeats, is
 *   reopened after the server's `retry:` delay with `Last-Event-ID`, so the
 *   server resumes after the last event seen and the `end` is never lost.
 * - When the server cannot be reached for `giveUpMs` in a row, following
 *   stops with a ConnectionError (the job itself goes on in the service).
 * - A service without the events route (404 while `GET /jobs/{id}` knows
 *   the job) is followed by polling `GET /jobs/{id}` instead.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { ServiceClient } from "./api.ts";
import { problem } from "./api.ts";
import { ConnectionError, ServiceError } from "./errors.ts";
import { type FailedItem, isFinal, type JobSummary, type ProgressData } from "./types.ts";

export interface FollowHandlers {
  progress(data: ProgressData): void;
  failed(item: FailedItem): void;
}

export interface FollowOptions {
  /** Give up after this long without reaching the server. */
  giveUpMs?: number;
  /** Reopen a stream that sent nothing (not even `: ping`) for this long. */
  idleMs?: number;
  /** Delay between polls when the events route is missing. */
  pollMs?: number;
  /** Failed items fetched for the summary when polling (no `failed` events then). */
  failedSample?: number;
}

export interface FollowResult {
  job: JobSummary;
  via: "events" | "polling";
}

const DEFAULT_RETRY_MS = 2000;

export async function followJob(
  client: ServiceClient,
  id: string,
  handlers: FollowHandlers,
  options: FollowOptions = {},
): Promise<FollowResult> {
  const giveUpMs = options.giveUpMs ?? 60_000;
  const idleMs = options.idleMs ?? 45_000;
  let retryMs = DEFAULT_RETRY_MS;
  let lastEventId: string | undefined;
  let lastContact = Date.now();

  for (;;) {
    const attempt = new AbortController();
    let res: Response | undefined;
    try {
      res = await client.events(id, lastEventId, attempt.signal);
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      if (Date.now() - lastContact > giveUpMs) throw err;
    }
    if (res) {
      if (res.status === 404 && lastEventId === undefined) {
        await res.body?.cancel();
        // Throws the service's 404 when the job itself is unknown.
        const known = await client.job(id);
        return { job: await poll(client, id, handlers, options, known), via: "polling" };
      }
      if (res.status >= 500 || res.status === 429) {
        await res.body?.cancel();
        if (Date.now() - lastContact > giveUpMs) {
          throw new ConnectionError(`the service kept answering ${res.status}`);
        }
      } else if (!res.ok) {
        throw await problem(res);
      } else if (!res.headers.get("content-type")?.startsWith("text/event-stream")) {
        await res.body?.cancel();
        throw new ServiceError(res.status, "the events route did not answer with an event stream");
      } else {
        lastContact = Date.now();
        const outcome = await readStream(res.body!, attempt, idleMs, {
          event(ev) {
            if (ev.id !== undefined) lastEventId = ev.id;
            lastContact = Date.now();
            return dispatch(ev, handlers);
          },
          retry(ms) {
            retryMs = ms;
          },
          contact() {
            lastContact = Date.now();
          },
        });
        if (outcome) return { job: outcome, via: "events" };
      }
    }
    await new Promise((r) => setTimeout(r, retryMs));
  }
}

/** Hands one event to the handlers; returns the summary when it is the `end`. */
function dispatch(ev: EventSourceMessage, handlers: FollowHandlers): JobSummary | undefined {
  let data: unknown;
  try {
    data = JSON.parse(ev.data);
  } catch {
    return undefined; // Not ours to understand; the stream goes on.
  }
  switch (ev.event) {
    case "progress":
      handlers.progress(data as ProgressData);
      return undefined;
    case "failed":
      handlers.failed(data as FailedItem);
      return undefined;
    case "end":
      handlers.progress(data as JobSummary);
      return data as JobSummary;
    default:
      return undefined;
  }
}

interface StreamSink {
  event(ev: EventSourceMessage): JobSummary | undefined;
  retry(ms: number): void;
  contact(): void;
}

/**
 * Reads one connection's events. Resolves with the `end` summary, or
 * undefined when the stream closed, broke or went silent (then the caller
 * reconnects).
 */
async function readStream(
  body: ReadableStream<Uint8Array>,
  attempt: AbortController,
  idleMs: number,
  sink: StreamSink,
): Promise<JobSummary | undefined> {
  let end: JobSummary | undefined;
  const parser = createParser({
    onEvent(ev) {
      end ??= sink.event(ev);
    },
    onRetry: sink.retry,
  });
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let idle = setTimeout(() => attempt.abort(), idleMs);
  try {
    while (!end) {
      const { value, done } = await reader.read();
      if (done) break;
      clearTimeout(idle);
      idle = setTimeout(() => attempt.abort(), idleMs);
      sink.contact();
      parser.feed(value);
    }
  } catch {
    // Reset, or aborted for silence: reconnect.
  } finally {
    clearTimeout(idle);
    attempt.abort();
    reader.cancel().catch(() => {});
  }
  return end;
}

/** Polls `GET /jobs/{id}` until the job is final, then reads a sample of its failed items. */
async function poll(
  client: ServiceClient,
  id: string,
  handlers: FollowHandlers,
  options: FollowOptions,
  first: JobSummary,
): Promise<JobSummary> {
  const giveUpMs = options.giveUpMs ?? 60_000;
  let lastContact = Date.now();
  for (let job: JobSummary | undefined = first;; job = undefined) {
    if (!job) {
      try {
        job = await client.job(id);
        lastContact = Date.now();
      } catch (err) {
        if (!(err instanceof ConnectionError) || Date.now() - lastContact > giveUpMs) throw err;
      }
    }
    if (job) {
      handlers.progress(job);
      if (isFinal(job.status)) {
        if (job.counts.failed > 0) {
          const sample = await client.failedItems(id, options.failedSample ?? 100);
          for (const item of sample) handlers.failed(item);
        }
        return job;
      }
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
  }
}

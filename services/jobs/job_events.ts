/**
 * A job's progress as Server-Sent Events, driven by KV alone so it follows
 * a job whichever instance processes it.
 *
 * Each turn of the loop reads, in this order: how far the job's items are
 * written (E), the first pending item (P), then the job and its counters
 * (one read; their highest versionstamp is the bound B). Every commit up to
 * B is visible to what is read after, so a scan of the failed index sends
 * exactly the failures committed up to B that come after the client's
 * position (see event_position.ts), in commit order. Items below
 * min(P, E) are finished for good, so later scans start there.
 *
 * KV `watch` wakes the loop at once for writes it reports; a poll every
 * `pollMs` catches the rest (a local SQLite KV does not report other
 * processes' writes). Turns are at least `minIntervalMs` apart, which caps
 * progress events; a `: ping` comment goes out after `heartbeatMs` of
 * silence.
 */
import type { JobReads } from "../store/job_reads.ts";
import { maxStamp } from "../store/job_reads.ts";
import type { JobSnapshot } from "../store/jobs_repo.ts";
import { type EventPosition, isAfter, progressKey, START } from "./event_position.ts";
import { encodePosition } from "./event_position.ts";
import { sleep, Wakeup } from "./wakeup.ts";

/** Asks EventSource clients to wait this long before reconnecting. */
export const RETRY_MS = 2000;

/** Failed items read per batch when sending failed events. */
const FAILED_BATCH = 100;

/** A failed-index scan is followed by at least this many times its own duration without one. */
const SCAN_COST_FACTOR = 4;

/** Reads of a turn that may fail in a row (a busy shared KV file) before the stream gives up. */
const MAX_READ_FAILURES = 20;

export interface JobEventOptions {
  heartbeatMs: number;
  pollMs: number;
  minIntervalMs: number;
  /** The job summary exactly as `GET /jobs/{id}` shows it (the end event's data). */
  summarize(snapshot: JobSnapshot): { status: string };
  /** Ends every stream when aborted (the process is stopping); clients reconnect and resume. */
  closing?: AbortSignal;
}

/** One Server-Sent Events message. */
export type SseMessage =
  | { retry: number }
  | { comment: string }
  | { id: string; event: "progress" | "failed" | "end"; data: unknown };

/** Formats one message as the `text/event-stream` wire text. */
export function formatSse(m: SseMessage): string {
  if ("retry" in m) return `retry: ${m.retry}\n\n`;
  if ("comment" in m) return `: ${m.comment}\n\n`;
  // JSON.stringify never emits a raw newline, so the data fits one line.
  return `id: ${m.id}\nevent: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`;
}

/** Opens event streams over one KV and counts those still open. */
export class JobEvents {
  #open = 0;

  constructor(private readonly reads: JobReads, private readonly opts: JobEventOptions) {}

  /** Streams running now; one counts until its watch and timers have stopped. */
  get open(): number {
    return this.#open;
  }

  /**
   * The `text/event-stream` body for a job, from `position` on. It ends
   * after the end event, when the job disappears, or when the reader
   * cancels it (Deno.serve does when the client goes away).
   */
  stream(jobId: string, position: EventPosition | null): ReadableStream<Uint8Array> {
    const stop = new AbortController();
    const signal = this.opts.closing
      ? AbortSignal.any([stop.signal, this.opts.closing])
      : stop.signal;
    const messages = this.#messages(jobId, position ?? START, signal);
    const encoder = new TextEncoder();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { value, done } = await messages.next();
          if (done) controller.close();
          else controller.enqueue(encoder.encode(formatSse(value)));
        } catch (err) {
          controller.error(err);
        }
      },
      async cancel() {
        stop.abort();
        await messages.return(undefined);
      },
    });
  }

  async *#messages(
    jobId: string,
    start: EventPosition,
    signal: AbortSignal,
  ): AsyncGenerator<SseMessage> {
    const { heartbeatMs, pollMs, minIntervalMs } = this.opts;
    const wakeup = new Wakeup();
    const watch = this.reads.watchJob(jobId).getReader();
    this.#open++;
    const watching = (async () => {
      for (;;) {
        const { done } = await watch.read();
        if (done) return;
        wakeup.wake();
      }
    })().catch(() => {});
    const poll = setInterval(() => wakeup.wake(), pollMs);
    try {
      yield { retry: RETRY_MS };
      let lastSent = Date.now();
      const position = { ...start };
      let frontier = 0;
      let scannedTo = "";
      let failures = 0;
      let nextScanAt = 0;
      for (;;) {
        const turn = Date.now();
        let written, pending, entries;
        try {
          written = await this.reads.itemsWritten(jobId);
          pending = await this.reads.firstPendingIndex(jobId);
          entries = await this.reads.jobEntries(jobId);
          failures = 0;
        } catch (err) {
          // Several processes on one SQLite KV file meet "database is locked": try again later.
          if (signal.aborted) return;
          if (++failures > MAX_READ_FAILURES) throw err;
          await sleep(pollMs, signal);
          continue;
        }
        const { snapshot, versionstamp } = entries;
        if (!snapshot || signal.aborted) return;
        const bound = maxStamp(versionstamp, written.stamp);
        // A scan reads the failed index from the frontier on: when one item
        // holds the frontier back in a large job, that can take a while, so
        // scans are spaced by four times their cost (the last one never waits).
        const ended = snapshot.job.finished !== null;
        if (bound !== scannedTo && (ended || Date.now() >= nextScanAt)) {
          const scanStart = Date.now();
          for await (const m of this.#failedSince(jobId, position, frontier, bound, signal)) {
            yield m;
            lastSent = Date.now();
          }
          if (signal.aborted) return;
          scannedTo = bound;
          frontier = Math.max(frontier, Math.min(pending ?? Infinity, written.count));
          nextScanAt = Date.now() + SCAN_COST_FACTOR * (Date.now() - scanStart);
        }
        const summary = this.opts.summarize(snapshot);
        const { complete, failed } = snapshot.counts;
        const key = progressKey(summary.status, complete, failed);
        if (key !== position.progress) {
          position.progress = key;
          yield {
            id: encodePosition(position),
            event: "progress",
            data: { status: summary.status, total: snapshot.job.total, counts: snapshot.counts },
          };
          lastSent = Date.now();
        }
        if (ended) {
          yield { id: encodePosition({ ...position, ended: true }), event: "end", data: summary };
          return;
        }
        for (;;) {
          const idle = Date.now() - lastSent;
          const woke = await wakeup.wait(heartbeatMs - idle, signal);
          if (woke === "aborted") return;
          if (woke === "woken") break;
          yield { comment: "ping" };
          lastSent = Date.now();
        }
        await sleep(minIntervalMs - (Date.now() - turn), signal);
      }
    } finally {
      clearInterval(poll);
      await watch.cancel().catch(() => {});
      await watching;
      this.#open--;
    }
  }

  /** Failed events for failures committed up to `bound` after `position`, in commit order. */
  async *#failedSince(
    jobId: string,
    position: EventPosition,
    fromIndex: number,
    bound: string,
    signal: AbortSignal,
  ): AsyncGenerator<SseMessage> {
    const marks: { index: number; stamp: string }[] = [];
    for await (const m of this.reads.failedMarks(jobId, fromIndex)) {
      if (m.versionstamp <= bound && isAfter(position, m.versionstamp, m.index)) {
        marks.push({ index: m.index, stamp: m.versionstamp });
      }
    }
    marks.sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : a.index - b.index));
    for (let i = 0; i < marks.length && !signal.aborted; i += FAILED_BATCH) {
      const batch = marks.slice(i, i + FAILED_BATCH);
      const items = await this.reads.items(jobId, batch.map((m) => m.index));
      for (let j = 0; j < batch.length; j++) {
        const item = items[j];
        position.stamp = batch[j].stamp;
        position.index = batch[j].index;
        // Retried since (it is pending again): its next failure is a new event.
        if (item?.state !== "failed") continue;
        yield {
          id: encodePosition(position),
          event: "failed",
          data: {
            index: batch[j].index,
            url: item.url,
            reason: item.reason ?? "",
            detail: item.detail ?? "",
            ...(item.line !== undefined ? { line: item.line } : {}),
          },
        };
      }
    }
  }
}

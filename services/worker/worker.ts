import { hostKey } from "../fetch/fetcher.ts";
import { deleteExpiredJobs } from "../job_ops/expiry.ts";
import { JobActions } from "../job_ops/job_actions.ts";
import type { JobMessage } from "../store/jobs_repo.ts";
import { isClaimable } from "../store/jobs_repo.ts";
import type { ItemRecord, JobRecord } from "../store/records.ts";
import type { WebhookDeliverer } from "../webhooks/deliverer.ts";
import { Admission } from "./admission.ts";
import type { ItemContext } from "./process_item.ts";
import { processItem } from "./process_item.ts";
import { DroppedTask, Scheduler } from "./scheduler.ts";

export interface WorkerOptions extends Omit<ItemContext, "signal" | "owner" | "isCancelled"> {
  kv: Deno.Kv;
  concurrency: number;
  perHostConcurrency: number;
  sweepIntervalMs: number;
  /** False where the KV has no queue (KV Connect, Deploy): the sweep drives everything. */
  useQueue: boolean;
  owner?: string;
  /** Jobs are deleted this long after creation (JOB_TTL_HOURS); by the sweep when set. */
  jobTtlMs?: number;
  /** Delivers the webhooks of ended jobs: run by the sweep, and at once when a job ends here. */
  webhooks?: WebhookDeliverer;
  /** Writes the items of a large list still held as submitted (see services/intake). */
  materialise?: (jobId: string) => Promise<void>;
  /** Deletes unreferenced bytes a crash left queued: run by the sweep. */
  collector?: { sweep(): Promise<number> };
}

/** A POST that has not finished writing its job after this long died. */
const ABANDONED_CREATION_MS = 10 * 60 * 1000;

/** Longest pause between two passes over a job's pending items. */
const MAX_PASS_PAUSE_MS = 500;

/**
 * Items taken up ahead of the download slots, per slot (overall and per
 * host): read and claimed while earlier downloads run, so a slot that
 * frees up starts its next download at once. It also bounds the claims a
 * crash leaves to expire.
 */
const AHEAD_PER_SLOT = 4;

/**
 * Items parked in memory while their host is busy (see Admission): under
 * 40 MB even with 8 KiB URLs.
 */
const MAX_PARKED = 5_000;

/**
 * While some of a job's items are parked, its pump looks for new work
 * (retries falling due) at most this often, not after every download:
 * each look reads all of the job's remaining items.
 */
const PARKED_PASS_PAUSE_MS = 5_000;

/** How long a job's cancel state read from KV is trusted before items read it again. */
const LOOK_MS = 250;

interface JobLook {
  /** When the read that gave `cancelled` started; -1: read again. */
  at: number;
  cancelled: boolean;
  /** The job changed in this process at this time: reads started before it are stale. */
  since: number;
  reading?: Promise<boolean>;
}

/**
 * Downloads the pending items of active jobs. A queue message or a local
 * notification starts a pump for a job; the sweep starts pumps for every
 * active job nobody here is pumping, which is how work resumes after a crash
 * and how it runs where KV has no queue.
 */
export class Worker {
  readonly #opts: WorkerOptions;
  readonly #ctx: ItemContext;
  readonly #scheduler: Scheduler;
  readonly #pumps = new Map<string, Promise<void>>();
  readonly #inFlight = new Set<string>();
  readonly #admission: Admission;
  /** Per job: items handed to admission and not started yet (parked). */
  readonly #parkedByJob = new Map<string, number>();
  /** Every item being processed, so stop() can wait for them. */
  readonly #items = new Set<Promise<void>>();
  /** Wakes a job's pump from its pause between passes. */
  readonly #wakers = new Map<string, () => void>();
  readonly #abort = new AbortController();
  /** Per job being worked on: whether it was cancelled when last read from KV, and when. */
  readonly #looks = new Map<string, JobLook>();
  readonly #actions: JobActions;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #stopping = false;

  constructor(opts: WorkerOptions) {
    this.#opts = opts;
    this.#ctx = {
      ...opts,
      owner: opts.owner ?? `${Deno.pid}:${crypto.randomUUID()}`,
      signal: this.#abort.signal,
      isCancelled: (jobId) => this.#isCancelled(jobId),
    };
    this.#actions = new JobActions(opts.jobs, { useQueue: opts.useQueue });
    this.#scheduler = new Scheduler(opts.concurrency, opts.perHostConcurrency);
    this.#admission = new Admission({
      maxAhead: opts.concurrency * AHEAD_PER_SLOT,
      maxAheadPerHost: opts.perHostConcurrency * AHEAD_PER_SLOT,
      maxParked: MAX_PARKED,
    });
  }

  start(): void {
    if (this.#opts.useQueue) {
      this.#opts.kv.listenQueue((msg: unknown) => {
        const m = msg as Partial<JobMessage> | null;
        if (m?.kind === "job" && typeof m.jobId === "string") this.notify(m.jobId);
      }).catch(() => {});
    }
    const sweep = () => {
      this.sweep().catch((err) => console.error(`sweep: ${(err as Error).message}`));
    };
    sweep();
    this.#sweepTimer = setInterval(sweep, this.#opts.sweepIntervalMs);
  }

  /**
   * Starts pumping a job unless this process already is (then its pump
   * looks at the job again now: it may have been cancelled). Returns at once.
   */
  notify(jobId: string): void {
    if (this.#stopping) return;
    if (this.#pumps.has(jobId)) {
      // The job may have changed (a cancel here): the next item to start reads it again,
      // and a read already under way is not trusted.
      this.#looks.set(jobId, { at: -1, cancelled: false, since: Date.now() });
      return this.#wakers.get(jobId)?.();
    }
    const pump = this.#pump(jobId)
      .catch((err) => console.error(`job ${jobId}: ${(err as Error).message}`))
      .finally(() => this.#pumps.delete(jobId));
    this.#pumps.set(jobId, pump);
  }

  /** Downloads running and waiting, and jobs being pumped, in this process. */
  stats(): { running: number; queued: number; jobs: number } {
    return {
      running: this.#scheduler.running,
      queued: this.#scheduler.queued,
      jobs: this.#pumps.size,
    };
  }

  /**
   * One sweep: makes sure every active job is being pumped here, and
   * collects the items of jobs whose POST died before it finished.
   */
  async sweep(): Promise<void> {
    this.#opts.webhooks?.kick();
    for await (const jobId of this.#opts.jobs.activeJobIds()) {
      if (this.#stopping) return;
      this.notify(jobId);
    }
    await this.#opts.jobs.collectAbandoned(ABANDONED_CREATION_MS);
    await this.#opts.collector?.sweep();
    if (this.#opts.jobTtlMs !== undefined) {
      await deleteExpiredJobs(this.#opts.jobs, this.#opts.jobTtlMs);
    }
  }

  /**
   * Stops taking work, gives downloads in flight `graceMs` to finish, then
   * aborts the rest: their items go back to pending for the next sweep.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#sweepTimer);
    for (const wake of this.#wakers.values()) wake();
    this.#admission.close();
    this.#scheduler.dropQueued();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([this.#scheduler.idle(), graceOver]);
    this.#abort.abort();
    await this.#scheduler.idle();
    await Promise.all(this.#pumps.values());
    await Promise.all(this.#items);
    clearTimeout(timer);
    // A delivery cut short is sent again after its lease ends (at least once).
    await this.#opts.webhooks?.idle();
  }

  /**
   * Processes one item: claims it, then downloads it in a scheduler slot.
   * `leave` tells admission the item no longer waits ahead.
   */
  #process(
    job: JobRecord,
    index: number,
    entry: Deno.KvEntry<ItemRecord>,
    key: string,
    leave: () => void,
  ): void {
    const host = hostKey(entry.value.url);
    const item: Promise<void> = processItem(this.#ctx, job, index, entry, (download) => {
      // Claimed while stop() dropped the queue: hand it back, do not start.
      if (this.#stopping) return Promise.reject(new DroppedTask());
      return this.#scheduler.run(host, (release) => {
        leave();
        return download(release);
      });
    })
      .catch((err) => console.error(`job ${job.id}: ${(err as Error).message}`))
      .finally(() => {
        leave();
        this.#items.delete(item);
        this.#inFlight.delete(key);
        this.#wake(job.id);
      });
    this.#items.add(item);
  }

  /** Hands an item to admission; false when stopping (the item was not taken). */
  async #admit(job: JobRecord, index: number, entry: Deno.KvEntry<ItemRecord>): Promise<boolean> {
    const key = `${job.id}/${index}`;
    this.#inFlight.add(key);
    this.#countParked(job.id, +1);
    const admitted = await this.#admission.admit(hostKey(entry.value.url), {
      start: (leave) => {
        this.#countParked(job.id, -1);
        this.#process(job, index, entry, key, leave);
      },
      drop: () => {
        this.#countParked(job.id, -1);
        this.#inFlight.delete(key);
      },
    });
    if (!admitted) {
      this.#countParked(job.id, -1);
      this.#inFlight.delete(key);
    }
    return admitted;
  }

  #countParked(jobId: string, delta: number): void {
    const n = (this.#parkedByJob.get(jobId) ?? 0) + delta;
    if (n === 0) this.#parkedByJob.delete(jobId);
    else this.#parkedByJob.set(jobId, n);
  }

  /**
   * The job as KV has it now, after finishing what a cancel or a retry left
   * to do (their commits may have been cut short by a crash). Null when the
   * job is gone (expired).
   */
  async #lookAtJob(jobId: string): Promise<JobRecord | null> {
    const started = Date.now();
    let job = await this.#opts.jobs.getJob(jobId);
    if (job?.retrying) {
      await this.#actions.requeueFailed(jobId);
      job = await this.#opts.jobs.getJob(jobId);
    }
    if (!job) return null;
    if (job.cancelled !== undefined) {
      await this.#actions.cancelPending(jobId);
    }
    this.#remember(jobId, started, job.cancelled !== undefined);
    return job;
  }

  /**
   * Whether the job was cancelled, as read from KV at most LOOK_MS ago (one
   * read per job at a time): asked before each item is claimed and again
   * when its download is about to start, so a cancel by any instance stops
   * the downloads that have not started within that time.
   */
  #isCancelled(jobId: string): boolean | Promise<boolean> {
    const look = this.#looks.get(jobId);
    if (look && Date.now() - look.at < LOOK_MS) return look.cancelled;
    if (look?.reading) return look.reading;
    const started = Date.now();
    const reading = this.#opts.jobs.getJob(jobId).then((job) => {
      const cancelled = job?.cancelled !== undefined;
      this.#remember(jobId, started, cancelled);
      return cancelled;
    }, () => look?.cancelled ?? false);
    this.#looks.set(jobId, { ...(look ?? { at: -1, cancelled: false, since: 0 }), reading });
    return reading;
  }

  /** Keeps what a read that started at `started` saw, unless the job changed after it started. */
  #remember(jobId: string, started: number, cancelled: boolean): void {
    const since = this.#looks.get(jobId)?.since ?? 0;
    if (started >= since) this.#looks.set(jobId, { at: started, cancelled, since });
    else this.#looks.set(jobId, { at: -1, cancelled: false, since });
  }

  /** Ends a job's pause between passes, unless it still has parked items to get through. */
  #wake(jobId: string): void {
    if (!this.#parkedByJob.has(jobId)) this.#wakers.get(jobId)?.();
  }

  async #pump(jobId: string): Promise<void> {
    const { jobs } = this.#opts;
    // A large list's items are written after its 202; any pump finishes the job first.
    await this.#opts.materialise?.(jobId);
    // Items below this index are all done: later passes start here.
    let lowWater = 0;
    while (!this.#stopping) {
      // Read each pass: a cancel or a retry (by any instance) shows up here.
      const job = await this.#lookAtJob(jobId);
      if (!job) return;
      const cancelled = job.cancelled !== undefined;
      let pending = 0;
      let nextDue = Infinity;
      let contiguousDone = true;
      for await (const entry of jobs.itemEntries(jobId, lowWater)) {
        if (this.#stopping) return;
        const index = entry.key.at(-1) as number;
        const item = entry.value;
        if (item.state === "complete" || item.state === "failed") {
          if (contiguousDone) lowWater = index + 1;
          continue;
        }
        contiguousDone = false;
        pending++;
        if (cancelled || this.#inFlight.has(`${jobId}/${index}`)) continue;
        const now = Date.now();
        if (!isClaimable(item, now)) {
          nextDue = Math.min(nextDue, item.notBefore ?? item.leaseUntil ?? now);
          continue;
        }
        if (this.#stopping || !await this.#admit(job, index, entry)) return;
      }
      if (pending === 0) {
        await jobs.finalizeIfDone(jobId, this.#actions.onEnd);
        this.#looks.delete(jobId);
        if (job.callbackUrl) this.#opts.webhooks?.kick();
        return;
      }
      // Look again when one of this job's downloads ends or a retry falls due.
      const longest = this.#parkedByJob.has(jobId) ? PARKED_PASS_PAUSE_MS : MAX_PASS_PAUSE_MS;
      const pause = Math.min(Math.max(nextDue - Date.now(), 20), longest);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pause);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#wakers.set(jobId, done);
      });
      this.#wakers.delete(jobId);
    }
  }
}

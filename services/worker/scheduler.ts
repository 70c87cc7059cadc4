/**
 * A task gets `release`, which frees its slot before the task ends: work
 * after the download proper (flushing to disk, committing to KV) then no
 * longer holds back the next download.
 */
type Task = (release: () => void) => Promise<void>;

/** The error `run()` rejects with when its task was dropped before it started (shutdown). */
export class DroppedTask extends Error {
  constructor() {
    super("dropped before it started");
  }
}

interface Queued {
  task: Task;
  drop: () => void;
}

interface HostQueue {
  tasks: Queued[];
  running: number;
  ready: boolean;
}

/**
 * Runs tasks with at most `globalLimit` at once and at most `perHostLimit`
 * per host, taking hosts in turn so one busy host cannot hold the others
 * back. Purely in memory: what it holds is re-derivable from KV.
 */
export class Scheduler {
  readonly #hosts = new Map<string, HostQueue>();
  readonly #ready: string[] = [];
  #running = 0;
  #queued = 0;
  /** Tasks started and not yet finished, released or not. */
  #tails = 0;
  #waiters: (() => void)[] = [];

  constructor(private readonly globalLimit: number, private readonly perHostLimit: number) {}

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#queued;
  }

  submit(host: string, task: Task): void {
    this.#enqueue(host, { task, drop: () => {} });
  }

  /**
   * Runs `task` in its turn and settles with its result; rejects with
   * {@link DroppedTask} if `dropQueued()` forgets it first, so a caller
   * holding something for the task (a claim) can hand it back.
   */
  run<T>(host: string, task: (release: () => void) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#enqueue(host, {
        task: (release) => task(release).then(resolve, reject),
        drop: () => reject(new DroppedTask()),
      });
    });
  }

  #enqueue(host: string, queued: Queued): void {
    let q = this.#hosts.get(host);
    if (!q) {
      q = { tasks: [], running: 0, ready: false };
      this.#hosts.set(host, q);
    }
    q.tasks.push(queued);
    this.#queued++;
    this.#markReady(host, q);
    this.#dispatch();
  }

  /** Resolves when nothing runs or waits, including work after an early release. */
  async idle(): Promise<void> {
    while (this.#tails > 0 || this.#queued > 0) await this.#changed();
  }

  /** Forgets tasks not yet started (on shutdown); `run()` callers see {@link DroppedTask}. */
  dropQueued(): void {
    for (const q of this.#hosts.values()) {
      this.#queued -= q.tasks.length;
      const dropped = q.tasks;
      q.tasks = [];
      q.ready = false;
      for (const t of dropped) t.drop();
    }
    this.#ready.length = 0;
    this.#notify();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #notify() {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #markReady(host: string, q: HostQueue) {
    if (!q.ready && q.tasks.length > 0 && q.running < this.perHostLimit) {
      q.ready = true;
      this.#ready.push(host);
    }
  }

  #dispatch() {
    while (this.#running < this.globalLimit && this.#ready.length > 0) {
      const host = this.#ready.shift()!;
      const q = this.#hosts.get(host);
      if (!q) continue;
      q.ready = false;
      const next = q.tasks.shift();
      if (!next) continue;
      this.#queued--;
      this.#running++;
      q.running++;
      this.#markReady(host, q);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.#running--;
        q.running--;
        if (q.running === 0 && q.tasks.length === 0) this.#hosts.delete(host);
        else this.#markReady(host, q);
        this.#dispatch();
        this.#notify();
      };
      this.#tails++;
      next.task(release).catch(() => {}).finally(() => {
        release();
        this.#tails--;
        this.#notify();
      });
    }
  }
}

/** An item offered to {@link Admission}. */
export interface Candidate {
  /** Starts work on the item; `leave` is called once it no longer counts as ahead. */
  start(leave: () => void): void;
  /** The item was parked and is forgotten (shutdown): undo whatever marks it as taken. */
  drop(): void;
}

/** Limits for {@link Admission}. */
export interface AdmissionLimits {
  /** Items started and not yet left, over all hosts. */
  maxAhead: number;
  /** The same, per host. */
  maxAheadPerHost: number;
  /** Items parked in memory because their host was at its limit. */
  maxParked: number;
}

/**
 * Decides when the items a pump reads may start. An item "ahead" has been
 * taken up (read, claimed) and waits for or holds a download slot; it
 * leaves once its download starts or its work ends. Ahead items are
 * limited overall and per host. An item whose host is at its limit is
 * parked in memory and started when one of that host's items leaves, so a
 * backlog on one slow host never stops the pump from reaching other hosts.
 * The pump waits only when the overall limit or the parking lot is full.
 */
export class Admission {
  readonly #limits: AdmissionLimits;
  #ahead = 0;
  readonly #aheadByHost = new Map<string, number>();
  readonly #parked = new Map<string, Candidate[]>();
  #parkedCount = 0;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  get ahead(): number {
    return this.#ahead;
  }

  get parked(): number {
    return this.#parkedCount;
  }

  /**
   * Starts `item` now or parks it, after waiting for room if need be.
   * False once closed: the item was neither started nor parked.
   */
  async admit(host: string, item: Candidate): Promise<boolean> {
    while (
      !this.#closed &&
      (this.#ahead >= this.#limits.maxAhead || this.#parkedCount >= this.#limits.maxParked)
    ) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.#closed) return false;
    if ((this.#aheadByHost.get(host) ?? 0) < this.#limits.maxAheadPerHost) {
      this.#start(host, item);
    } else {
      let queue = this.#parked.get(host);
      if (!queue) this.#parked.set(host, queue = []);
      queue.push(item);
      this.#parkedCount++;
    }
    return true;
  }

  /** Stops admitting: waiting `admit` calls return false and parked items are dropped. */
  close(): void {
    this.#closed = true;
    const parked = [...this.#parked.values()].flat();
    this.#parked.clear();
    this.#parkedCount = 0;
    for (const item of parked) item.drop();
    this.#wake();
  }

  #start(host: string, item: Candidate): void {
    this.#ahead++;
    this.#aheadByHost.set(host, (this.#aheadByHost.get(host) ?? 0) + 1);
    let left = false;
    item.start(() => {
      if (left) return;
      left = true;
      this.#ahead--;
      const n = this.#aheadByHost.get(host)! - 1;
      if (n === 0) this.#aheadByHost.delete(host);
      else this.#aheadByHost.set(host, n);
      this.#startParked(host);
      this.#wake();
    });
  }

  /** A place opened up for `host`: its longest-parked item goes. */
  #startParked(host: string): void {
    const queue = this.#parked.get(host);
    if (!queue || this.#closed) return;
    const next = queue.shift()!;
    if (queue.length === 0) this.#parked.delete(host);
    this.#parkedCount--;
    this.#start(host, next);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

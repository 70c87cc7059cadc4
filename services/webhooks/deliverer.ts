import type { Keys } from "../store/kv_keys.ts";
import type { WebhookDelivery } from "./outbox.ts";
import { type SendResult, sendWebhook, type WebhookSenderDeps } from "./sender.ts";

export interface DelivererOptions extends WebhookSenderDeps {
  kv: Deno.Kv;
  keys: Keys;
  /** Further attempts after the first failed one; then the delivery is dropped (and logged). */
  retries: number;
  /** Wait after the first failure; doubles per attempt (with jitter), at most an hour. */
  retryBaseMs: number;
  owner?: string;
  /** Where failures are reported; console.error by default. */
  log?: (line: string) => void;
}

/** Longest wait between two attempts. */
const MAX_BACKOFF_MS = 60 * 60 * 1000;
/** Deliveries attempted at once by one process. */
const AT_ONCE = 8;

/**
 * Delivers the webhook outbox: at least once, from any instance, across
 * restarts. Each attempt first takes a lease on the delivery with a
 * versionstamp-checked commit (so two instances never send it at the same
 * time), then records the outcome under that lease: deleted after a 2xx,
 * else rescheduled with exponential backoff, or dropped when the retries
 * are used up or the policy refuses the address.
 */
export class WebhookDeliverer {
  readonly #opts: DelivererOptions;
  readonly #owner: string;
  #round: Promise<void> | null = null;
  #again = false;

  constructor(opts: DelivererOptions) {
    this.#opts = opts;
    this.#owner = opts.owner ?? `${Deno.pid}:${crypto.randomUUID()}`;
  }

  /** Runs a round now (or right after the one running). Returns at once. */
  kick(): void {
    if (this.#round) {
      this.#again = true;
      return;
    }
    this.#round = this.deliverDue()
      .catch((err) => this.#log(`webhooks: ${(err as Error).message}`))
      .finally(() => {
        this.#round = null;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  /** Waits for the round in progress, if any (for shutdown and tests). */
  async idle(): Promise<void> {
    while (this.#round) await this.#round;
  }

  /** One round: every due delivery nobody holds is attempted once. */
  async deliverDue(now = Date.now()): Promise<void> {
    const { kv, keys } = this.#opts;
    const due: Deno.KvEntry<WebhookDelivery>[] = [];
    for await (const e of kv.list<WebhookDelivery>({ prefix: keys.webhookOutbox() })) {
      const d = e.value;
      if (d.nextAt <= now && (d.leaseUntil ?? 0) < now) due.push(e);
    }
    for (let i = 0; i < due.length; i += AT_ONCE) {
      await Promise.all(due.slice(i, i + AT_ONCE).map((e) => this.#attempt(e)));
    }
  }

  async #attempt(entry: Deno.KvEntry<WebhookDelivery>): Promise<void> {
    const { kv } = this.#opts;
    const leased: WebhookDelivery = {
      ...entry.value,
      leaseOwner: this.#owner,
      // Past the attempt's own time limit, so the lease never ends mid-send.
      leaseUntil: Date.now() + this.#opts.timeoutMs * 2 + 1_000,
    };
    const claim = await kv.atomic().check(entry).set(entry.key, leased).commit();
    if (!claim.ok) return; // another instance took it
    const result = await sendWebhook(this.#opts, leased);
    const attempts = leased.attempts + 1;
    const op = kv.atomic().check({ key: entry.key, versionstamp: claim.versionstamp });
    if (result.ok) op.delete(entry.key);
    else if (result.permanent || attempts > this.#opts.retries) {
      op.delete(entry.key);
      this.#log(giveUpLine(leased, attempts, result));
    } else {
      const { leaseOwner: _o, leaseUntil: _u, ...rest } = leased;
      op.set(
        entry.key,
        {
          ...rest,
          attempts,
          nextAt: Date.now() + this.backoffMs(attempts),
          lastError: result.error,
        } satisfies WebhookDelivery,
      );
    }
    await op.commit();
  }

  /** The wait after `attempts` failed attempts: base × 2^(attempts-1), ±20% jitter, capped. */
  backoffMs(attempts: number): number {
    const raw = Math.min(this.#opts.retryBaseMs * 2 ** (attempts - 1), MAX_BACKOFF_MS);
    return Math.round(raw * (0.8 + Math.random() * 0.4));
  }

  #log(line: string): void {
    (this.#opts.log ?? console.error)(line);
  }
}

function giveUpLine(d: WebhookDelivery, attempts: number, result: SendResult): string {
  const why = result.ok ? "" : result.error;
  return `webhook ${d.id} for job ${d.jobId} to ${d.url} dropped after ${attempts} attempt(s): ${why}`;
}

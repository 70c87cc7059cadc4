/**
 * Accepting a submission: the `callback_url` check, the `Idempotency-Key`
 * rule, then the job itself. Free of HTTP: refusals are typed errors the
 * route turns into problem answers.
 */
import type { AddressPolicy } from "../net/address_policy.ts";
import { vetDestination } from "../net/destination.ts";
import type { Resolver } from "../net/resolver.ts";
import type { IdempotencyRepo } from "../store/idempotency_repo.ts";
import type { JobSnapshot, JobsRepo } from "../store/jobs_repo.ts";
import type { JobWriter, NewJob } from "./job_writer.ts";

/** Longest `Idempotency-Key` (the IETF draft leaves it to the server; 255 is common). */
export const MAX_IDEMPOTENCY_KEY = 255;

/** A `callback_url` the service will not deliver to. */
export class CallbackRefused extends Error {}

/** The `Idempotency-Key` was used before with a different request. */
export class IdempotencyConflict extends Error {}

export interface CallbackSettings {
  /** Webhooks are signed with it; without one no callback is accepted. */
  secret: string | undefined;
  policy: AddressPolicy;
  resolver: Resolver;
}

export interface Accepted {
  snapshot: JobSnapshot;
  /** True when an earlier request with the same key and body made the job. */
  replayed: boolean;
}

export class Intake {
  constructor(
    private readonly writer: JobWriter,
    private readonly jobs: JobsRepo,
    private readonly idempotency: IdempotencyRepo,
    private readonly callbacks: CallbackSettings,
  ) {}

  /**
   * Checks a webhook address as image downloads are checked (address
   * policy, then every address its name resolves to). Throws CallbackRefused.
   */
  async checkCallback(url: string): Promise<void> {
    if (!this.callbacks.secret) {
      throw new CallbackRefused(
        "`callback_url` needs webhooks, and this service has no WEBHOOK_SECRET to sign them.",
      );
    }
    const vetted = await vetDestination(
      url,
      this.callbacks.policy,
      this.callbacks.resolver,
      AbortSignal.timeout(5_000),
    ).catch(() => ({ ok: false as const, detail: "its host name could not be resolved in time" }));
    if (!vetted.ok) throw new CallbackRefused(`\`callback_url\` is refused: ${vetted.detail}.`);
  }

  /**
   * Records the job, or with an `Idempotency-Key` already used for the same
   * request, answers the job it made. Throws IdempotencyConflict when the
   * key came with a different request.
   */
  async submit(spec: NewJob, key?: { key: string; fingerprint: string }): Promise<Accepted> {
    if (key) {
      const earlier = await this.idempotency.get(key.key);
      if (earlier) return await this.#replay(earlier, key.fingerprint);
    }
    const outcome = await this.writer.create(spec, key);
    if (outcome.created) return { snapshot: outcome.snapshot, replayed: false };
    return await this.#replay(outcome.claimed, key!.fingerprint);
  }

  /** Writes the items of a large list not yet written (the worker calls it before a pass). */
  materialise(jobId: string): Promise<void> {
    return this.writer.materialise(jobId);
  }

  async #replay(
    earlier: { jobId: string; fingerprint: string },
    fingerprint: string,
  ): Promise<Accepted> {
    if (earlier.fingerprint !== fingerprint) {
      throw new IdempotencyConflict(
        "This Idempotency-Key was already used with a different request.",
      );
    }
    const snapshot = await this.jobs.get(earlier.jobId);
    // The job outlived by its key (expired or deleted): the key no longer proves anything.
    if (!snapshot) {
      throw new IdempotencyConflict(
        "This Idempotency-Key names a job that no longer exists; use a new key.",
      );
    }
    return { snapshot, replayed: true };
  }
}

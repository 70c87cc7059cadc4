import type { AtomicWriter } from "./kv_batcher.ts";
import type { Keys } from "./kv_keys.ts";

/** How long an `Idempotency-Key` is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** What an `Idempotency-Key` was first used for. */
export interface IdempotencyRecord {
  jobId: string;
  /** SHA-256 (hex) of the request it came with: content type, body and query. */
  fingerprint: string;
}

/**
 * `Idempotency-Key`s in KV. The key is claimed in the same commit that makes
 * the job visible, guarded by "not there yet", so two racing requests with
 * one key cannot both create a job.
 */
export class IdempotencyRepo {
  constructor(private readonly kv: Deno.Kv, private readonly keys: Keys) {}

  async get(key: string): Promise<IdempotencyRecord | null> {
    return (await this.kv.get<IdempotencyRecord>(this.keys.idempotencyKey(key))).value;
  }

  /** Adds to `op` the claim of `key`: the commit fails if another request claimed it first. */
  addClaim(op: AtomicWriter, key: string, record: IdempotencyRecord): void {
    const k = this.keys.idempotencyKey(key);
    op.check({ key: k, versionstamp: null }).set(k, record, { expireIn: IDEMPOTENCY_TTL_MS });
  }
}

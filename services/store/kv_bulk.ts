/** KV's per-commit limits (platform notes), with headroom for key overhead. */
const MAX_MUTATIONS = 1000;
const MAX_COMMIT_BYTES = 700_000;

export type Mutation =
  | { type: "set"; key: Deno.KvKey; value: unknown; size: number; expireIn?: number }
  | { type: "delete"; key: Deno.KvKey; size: number };

/**
 * Writes many independent mutations in as few commits as KV's limits allow,
 * all commits in flight at once. Not atomic as a whole: callers make the
 * result visible with a final commit of their own.
 */
export async function commitInBatches(kv: Deno.Kv, mutations: Mutation[]): Promise<void> {
  const commits: Promise<Deno.KvCommitResult | Deno.KvCommitError>[] = [];
  let op = kv.atomic();
  let count = 0;
  let bytes = 0;
  for (const m of mutations) {
    if (count + 1 > MAX_MUTATIONS || bytes + m.size > MAX_COMMIT_BYTES) {
      commits.push(op.commit());
      op = kv.atomic();
      count = 0;
      bytes = 0;
    }
    if (m.type === "set") {
      op.set(m.key, m.value, m.expireIn === undefined ? undefined : { expireIn: m.expireIn });
    } else op.delete(m.key);
    count++;
    bytes += m.size;
  }
  if (count > 0) commits.push(op.commit());
  const results = await Promise.all(commits);
  if (results.some((r) => !r.ok)) throw new Error("KV batch commit failed");
}

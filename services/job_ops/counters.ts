/**
 * Job counters are `Deno.KvU64` values changed with `sum`, so concurrent
 * workers never contend on them. `sum` only adds, but it adds modulo 2^64:
 * adding 2^64 - n takes n away. Callers only subtract what they moved out
 * of the counted state in the same commit, so a counter never goes below 0.
 */
const WRAP = 1n << 64n;

/** The addend that takes `n` away from a KvU64 counter under `sum`. */
export function minus(n: number): bigint {
  return n === 0 ? 0n : WRAP - BigInt(n);
}

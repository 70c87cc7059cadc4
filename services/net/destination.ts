import { type AddressPolicy, checkAddress, checkUrl, type Refusal } from "./address_policy.ts";
import type { Resolver } from "./resolver.ts";

/** A URL whose every address passed the policy: safe to connect to any of `addresses`. */
export interface Destination {
  url: URL;
  hostname: string;
  port: number;
  /** Vetted IP literals (IPv6 without brackets), in the resolver's order. */
  addresses: string[];
}

/** Outcome of {@link vetDestination}. */
export type DestinationResult =
  | { ok: true; destination: Destination }
  | Refusal
  | { ok: false; reason: "unreachable"; detail: string };

/**
 * Checks a URL (or redirect target), resolves its host name and vets every
 * address it resolves to: a single refused record refuses the URL, because
 * DNS answers can be reordered or rebound between lookups. Rejects only when
 * `signal` aborts.
 */
export async function vetDestination(
  input: string | URL,
  policy: AddressPolicy,
  resolver: Resolver,
  signal?: AbortSignal,
): Promise<DestinationResult> {
  const checked = checkUrl(input, policy);
  if (!checked.ok) return checked;
  const { url, hostname, port } = checked;
  if (checked.address !== null) {
    return { ok: true, destination: { url, hostname, port, addresses: [checked.address] } };
  }

  let addresses: string[];
  try {
    addresses = await resolver.resolve(hostname, signal);
  } catch (err) {
    if (signal?.aborted) throw err;
    return { ok: false, reason: "unreachable", detail: (err as Error).message ?? String(err) };
  }
  if (addresses.length === 0) {
    return { ok: false, reason: "unreachable", detail: `${hostname} has no addresses` };
  }
  for (const address of addresses) {
    const refusal = checkAddress(address, { hostname, port }, policy);
    if (refusal) return { ok: false, reason: "blocked_address", detail: refusal };
  }
  return { ok: true, destination: { url, hostname, port, addresses } };
}

import { parseIp } from "./special_ranges.ts";
import { Semaphore } from "./semaphore.ts";

/**
 * Turns a host name into the IP addresses it has. The fetcher resolves names
 * itself (rather than letting fetch do it) so that every address can be
 * vetted before a connection is made, and the connection then goes to a
 * vetted address only. Injectable so tests never touch real DNS.
 */
export interface Resolver {
  /**
   * All IPv4 and IPv6 addresses of `hostname` (canonical text form). Rejects
   * with a {@link ResolveError} when the name has no address.
   */
  resolve(hostname: string, signal?: AbortSignal): Promise<string[]>;
}

/** A name that could not be resolved (NXDOMAIN, no records, DNS timeout...). */
export class ResolveError extends Error {
  override name = "ResolveError";
}

/** One DNS query; the default is `Deno.resolveDns`. */
export type DnsLookup = (
  hostname: string,
  type: "A" | "AAAA",
  signal: AbortSignal,
) => Promise<string[]>;

/** Tuning for {@link DnsResolver}. */
export interface DnsResolverOptions {
  /** How long a resolution is reused. Short, so DNS changes are seen soon. */
  ttlMs?: number;
  /** How long a failed resolution is remembered, so a dead host is not asked again per URL. */
  negativeTtlMs?: number;
  /** Cache bound; the oldest entry goes first. */
  maxEntries?: number;
  /** Lookups in flight at once, so a batch of many hosts cannot flood the resolver. */
  maxConcurrent?: number;
  /** Upper bound on one lookup. */
  lookupTimeoutMs?: number;
  lookup?: DnsLookup;
}

interface CacheEntry {
  expires: number;
  addresses?: string[];
  error?: ResolveError;
}

const LOCALHOST = ["127.0.0.1", "::1"];

const denoLookup: DnsLookup = (hostname, type, signal) =>
  Deno.resolveDns(hostname, type, { signal });

/**
 * Resolves A and AAAA records with `Deno.resolveDns`, with a small TTL
 * cache, one shared lookup per name in flight, and a cap on concurrent
 * lookups. `localhost` and `*.localhost` are answered locally (RFC 6761)
 * with the loopback addresses, which the policy then refuses unless allowed.
 */
export class DnsResolver implements Resolver {
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxEntries: number;
  readonly #lookupTimeoutMs: number;
  readonly #lookup: DnsLookup;
  readonly #limit: Semaphore;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inFlight = new Map<string, Promise<string[]>>();

  constructor(options: DnsResolverOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 30_000;
    this.#negativeTtlMs = options.negativeTtlMs ?? 5_000;
    this.#maxEntries = options.maxEntries ?? 1_000;
    this.#lookupTimeoutMs = options.lookupTimeoutMs ?? 5_000;
    this.#lookup = options.lookup ?? denoLookup;
    this.#limit = new Semaphore(options.maxConcurrent ?? 16);
  }

  /** Lookups running right now (for tests). */
  get activeLookups(): number {
    return this.#limit.active;
  }

  resolve(hostname: string, signal?: AbortSignal): Promise<string[]> {
    const name = hostname.toLowerCase().replace(/\.$/, "");
    if (name === "localhost" || name.endsWith(".localhost")) return Promise.resolve([...LOCALHOST]);

    const cached = this.#cache.get(name);
    if (cached && cached.expires > Date.now()) {
      return cached.error ? Promise.reject(cached.error) : Promise.resolve([...cached.addresses!]);
    }
    let shared = this.#inFlight.get(name);
    if (!shared) {
      shared = this.#resolveUncached(name).finally(() => this.#inFlight.delete(name));
      this.#inFlight.set(name, shared);
    }
    return signal ? raceAbort(shared, signal) : shared;
  }

  async #resolveUncached(name: string): Promise<string[]> {
    // The shared lookup is not tied to any one caller's signal: another
    // caller may still want the answer. It has its own time limit instead.
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new Error("DNS lookup timed out")),
      this.#lookupTimeoutMs,
    );
    const signal = timeout.signal;
    try {
      const addresses = await this.#limit.run(async () => {
        const [v4, v6] = await Promise.allSettled([
          this.#lookup(name, "A", signal),
          this.#lookup(name, "AAAA", signal),
        ]);
        const found = [v4, v6].flatMap((r) => r.status === "fulfilled" ? r.value : []);
        if (found.length === 0) {
          const why = [v4, v6].find((r) => r.status === "rejected") as
            | PromiseRejectedResult
            | undefined;
          throw new ResolveError(
            `cannot resolve ${name}: ${why ? errorText(why.reason) : "no A or AAAA records"}`,
          );
        }
        // Canonical text so the policy and the connection see the same string;
        // a record that is not an address can never be connected to.
        return found.map((a) => parseIp(a)?.toString()).filter((a): a is string => !!a);
      });
      if (addresses.length === 0) {
        throw new ResolveError(`cannot resolve ${name}: no usable records`);
      }
      this.#remember(name, { expires: Date.now() + this.#ttlMs, addresses });
      return [...addresses];
    } catch (err) {
      const error = err instanceof ResolveError
        ? err
        : new ResolveError(`cannot resolve ${name}: ${errorText(err)}`);
      this.#remember(name, { expires: Date.now() + this.#negativeTtlMs, error });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #remember(name: string, entry: CacheEntry): void {
    this.#cache.delete(name);
    while (this.#cache.size >= this.#maxEntries) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(name, entry);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `promise`, or a rejection as soon as `signal` aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

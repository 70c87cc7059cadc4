import type { BlobStore, StagedBlob } from "../blobs/blob_store.ts";
import type { ImageInfo } from "../image/types.ts";
import type { AddressPolicy } from "../net/address_policy.ts";
import { type Connector, PinnedConnector, type PinnedResponse } from "../net/connector.ts";
import { type Destination, vetDestination } from "../net/destination.ts";
import { DnsResolver, type Resolver } from "../net/resolver.ts";
import { AttemptControl, type Failure, FetchFailure, TimeoutClock } from "./attempt_control.ts";
import {
  cachingFrom,
  type Conditional,
  etagsMatchWeakly,
  keptFor,
  type OriginCaching,
} from "./caching.ts";
import { decoderFor } from "./content_encoding.ts";
import { guardBody } from "./guarded_body.ts";
import type { FailureReason } from "./reasons.ts";
import { isTransientReason, parseRetryAfter } from "./retry.ts";

export type { AddressPolicy } from "../net/address_policy.ts";
export type { Conditional, OriginCaching } from "./caching.ts";
export type { Connector } from "../net/connector.ts";
export type { Resolver } from "../net/resolver.ts";

/** Limits and identity for every download. */
export interface FetchSettings {
  maxImageBytes: number;
  maxImagePixels: number;
  /** Whole attempt, redirects included. */
  totalTimeoutMs: number;
  /** Per hop: DNS, connecting, and waiting for the response headers. */
  connectTimeoutMs: number;
  /** Longest wait for the next body byte. */
  stallTimeoutMs: number;
  maxRedirects: number;
  userAgent: string;
  policy: AddressPolicy;
}

/**
 * Outcome of one attempt; a success holds staged (uncommitted) bytes the
 * caller must commit or discard, and the caching headers of the answer.
 */
export type AttemptResult =
  | {
    ok: true;
    notModified?: false;
    staged: StagedBlob;
    info: ImageInfo;
    finalUrl: string;
    caching: OriginCaching;
  }
  | {
    ok: false;
    reason: FailureReason;
    detail: string;
    transient: boolean;
    retryAfterMs?: number;
  };

/**
 * The origin answered 304 to the validators sent: the stored bytes are
 * current. `caching` holds the caching headers the 304 carried (to update
 * the stored ones); nothing was downloaded or staged.
 */
export interface NotModified {
  ok: true;
  notModified: true;
  finalUrl: string;
  caching: OriginCaching;
}

/** Outcome of a conditional attempt. */
export type RevalidateResult = AttemptResult | NotModified;

/** Downloads one URL per call; retries are the caller's business. */
export interface Fetcher {
  /**
   * One attempt (following up to maxRedirects redirects). Never throws and
   * never hangs longer than totalTimeoutMs. `signal` aborts the attempt
   * (e.g. on shutdown): the result is then a transient failure and nothing
   * stays staged.
   */
  attempt(url: string, signal?: AbortSignal): Promise<AttemptResult>;
  /**
   * One attempt that sends `If-None-Match` / `If-Modified-Since` with the
   * stored validators to the hop they came from. A 304 there is
   * {@link NotModified}; a 304 whose ETag contradicts the one sent means the
   * origin has something else, so the URL is fetched again unconditionally
   * within the same attempt. A 304 to a request without validators fails as
   * `http_304` (the origin is misbehaving and no bytes came).
   */
  revalidate(
    url: string,
    conditional: Conditional,
    signal?: AbortSignal,
  ): Promise<RevalidateResult>;
  /** Releases pooled connections (of a connector the fetcher created itself). */
  close(): void;
}

/** Collaborators; resolver and connector default to real DNS and pinned sockets. */
export interface FetcherDeps {
  blobs: BlobStore;
  resolver?: Resolver;
  connector?: Connector;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Creates the fetcher the worker uses. */
export function createFetcher(settings: FetchSettings, deps: FetcherDeps): Fetcher {
  const resolver = deps.resolver ?? new DnsResolver();
  const ownConnector = deps.connector === undefined;
  const connector = deps.connector ??
    new PinnedConnector({ connectTimeoutMs: settings.connectTimeoutMs });
  const clock = new TimeoutClock();
  const run = { settings, blobs: deps.blobs, resolver, connector, clock };
  return {
    // Without validators no hop can answer NotModified (a 304 fails as http_304).
    attempt: (url, signal) => attempt(url, null, signal, run) as Promise<AttemptResult>,
    revalidate: (url, conditional, signal) => attempt(url, conditional, signal, run),
    close: () => {
      if (ownConnector) connector.close();
    },
  };
}

/**
 * The key the scheduler limits concurrency by: lowercase `hostname[:port]`
 * (port only when not the scheme's default). An unparsable URL is its own
 * key, lowercased, so it still gets scheduled and then fails as invalid_url.
 */
export function hostKey(url: string): string {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return url.toLowerCase();
  }
}

/** What every attempt of one fetcher shares. */
interface Run {
  settings: FetchSettings;
  blobs: BlobStore;
  resolver: Resolver;
  connector: Connector;
  clock: TimeoutClock;
}

/** Returned by `follow` for a 304 whose ETag is not the one that was sent. */
const CONTRADICTED = Symbol("contradicted");

async function attempt(
  url: string,
  conditional: Conditional | null,
  signal: AbortSignal | undefined,
  run: Run,
): Promise<RevalidateResult> {
  const { settings } = run;
  const control = new AttemptControl(run.clock, signal);
  control.deadline(
    settings.totalTimeoutMs,
    `the attempt took longer than ${settings.totalTimeoutMs} ms`,
  );
  try {
    const hop = conditional === null ? null : normalised(conditional);
    const first = await follow(url, hop, run, control);
    if (first !== CONTRADICTED) return first;
    const again = await follow(url, null, run, control);
    if (again === CONTRADICTED) throw new Error("a 304 contradicted validators never sent");
    return again;
  } catch (err) {
    const failure = control.explain(err, () =>
      control.fail("unreachable", `unexpected error: ${(err as Error)?.message ?? err}`)).failure;
    return toResult(failure);
  } finally {
    control.dispose();
  }
}

/** The validators with their hop's URL as `URL.href` spells it, or null if it cannot be parsed. */
function normalised(conditional: Conditional): Conditional | null {
  try {
    return { ...conditional, url: new URL(conditional.url).href };
  } catch {
    return null;
  }
}

/**
 * Walks the redirect chain, vetting each hop, and downloads the final
 * answer. `conditional` goes to the one hop whose URL gave the validators.
 */
async function follow(
  url: string,
  conditional: Conditional | null,
  { settings, blobs, resolver, connector }: Run,
  control: AttemptControl,
): Promise<RevalidateResult | typeof CONTRADICTED> {
  let current: string | URL = url;
  const visited = new Set<string>();
  for (let redirects = 0;; redirects++) {
    const stopConnectTimer = control.deadline(
      settings.connectTimeoutMs,
      `no response headers within ${settings.connectTimeoutMs} ms`,
    );
    const vetted = await vetDestination(current, settings.policy, resolver, control.signal)
      .catch((err) => {
        throw control.explain(err, () => control.fail("unreachable", String(err)));
      });
    if (!vetted.ok) throw control.fail(vetted.reason, hopDetail(redirects, vetted.detail));
    const dest = vetted.destination;
    visited.add(dest.url.href);

    // Validators describe the answer of one URL: sent elsewhere (a redirect
    // that moved), a 304 would vouch for something that was never stored.
    const sent = conditional?.url === dest.url.href ? conditional : null;
    const pinned = await send(dest, sent, settings, connector, control);
    stopConnectTimer();
    const { response } = pinned;
    try {
      const location = response.headers.get("location");
      if (REDIRECT_STATUSES.has(response.status) && location !== null) {
        await response.body?.cancel().catch(() => {});
        if (redirects >= settings.maxRedirects) {
          throw control.fail("too_many_redirects", `more than ${settings.maxRedirects} redirects`);
        }
        let next: URL;
        try {
          next = new URL(location, dest.url);
        } catch {
          throw control.fail(
            "invalid_url",
            `redirect to an invalid URL: ${location.slice(0, 200)}`,
          );
        }
        if (visited.has(next.href)) {
          throw control.fail("too_many_redirects", `redirect loop back to ${next.href}`);
        }
        current = next;
        continue;
      }
      if (response.status === 304) {
        await response.body?.cancel().catch(() => {});
        if (sent === null) {
          throw control.fail(
            "http_304",
            `${dest.url.href} answered 304 Not Modified to a request that carried no validators`,
          );
        }
        const caching = cachingFrom(response.headers);
        if (sent.etag !== undefined && caching.etag !== undefined) {
          if (!etagsMatchWeakly(sent.etag, caching.etag)) return CONTRADICTED;
        }
        return { ok: true, notModified: true, finalUrl: dest.url.href, caching };
      }
      // 206 is a 2xx but never a whole image (no Range was sent).
      if (response.status < 200 || response.status > 299 || response.status === 206) {
        await response.body?.cancel().catch(() => {});
        const retryAfter = response.status === 429 || response.status === 503
          ? parseRetryAfter(response.headers.get("retry-after"))
          : undefined;
        throw control.fail(
          `http_${response.status}`,
          `${dest.url.href} answered ${response.status} ${response.statusText}`.trim(),
          retryAfter,
        );
      }
      return await download(dest, url, response, settings, blobs, control);
    } finally {
      pinned.done();
    }
  }
}

function hopDetail(redirects: number, detail: string): string {
  return redirects === 0 ? detail : `redirect ${redirects}: ${detail}`;
}

/** Sends the request to the first vetted address that accepts a connection. */
async function send(
  dest: Destination,
  conditional: Conditional | null,
  settings: FetchSettings,
  connector: Connector,
  control: AttemptControl,
): Promise<PinnedResponse> {
  const headers: Record<string, string> = {
    "user-agent": settings.userAgent,
    // Compressed images gain nothing and would hide the real size.
    "accept-encoding": "identity",
    accept: "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5",
  };
  // Both, as browsers do: an origin that understands If-None-Match ignores
  // If-Modified-Since (RFC 9110 section 13.1.3). Sent verbatim, weak ETags too:
  // If-None-Match compares weakly.
  if (conditional?.etag !== undefined) headers["if-none-match"] = conditional.etag;
  if (conditional?.lastModified !== undefined) {
    headers["if-modified-since"] = conditional.lastModified;
  }
  const init: RequestInit = {
    method: "GET",
    redirect: "manual",
    signal: control.signal,
    headers,
  };
  const errors: string[] = [];
  for (const address of dest.addresses) {
    try {
      return await connector.request(dest.url, { address, port: dest.port }, init);
    } catch (err) {
      if (control.failure) throw new FetchFailure(control.failure);
      errors.push(`${address}: ${errorText(err)}`);
    }
  }
  throw control.fail("unreachable", `cannot connect to ${dest.url.host} (${errors.join("; ")})`);
}

/** Streams an accepted response into the blob store through the body checks. */
async function download(
  dest: Destination,
  requestedUrl: string,
  response: Response,
  settings: FetchSettings,
  blobs: BlobStore,
  control: AttemptControl,
): Promise<AttemptResult> {
  const decoder = decoderFor(response.headers.get("content-encoding"));
  if (decoder !== null && typeof decoder === "object") {
    throw control.fail("not_an_image", `unsupported Content-Encoding "${decoder.unsupported}"`);
  }
  const lengthHeader = response.headers.get("content-length");
  const contentLength = lengthHeader !== null && /^\d+$/.test(lengthHeader.trim())
    ? Number(lengthHeader.trim())
    : null;
  if (decoder === null && contentLength !== null && contentLength > settings.maxImageBytes) {
    throw control.fail(
      "too_large",
      `Content-Length ${contentLength} exceeds ${settings.maxImageBytes} bytes`,
    );
  }
  if (!response.body) throw control.fail("not_an_image", "the body is empty");

  const stall = control.stallWatch(settings.stallTimeoutMs);
  const guarded = guardBody(
    response.body,
    {
      maxImageBytes: settings.maxImageBytes,
      maxImagePixels: settings.maxImagePixels,
      contentLength,
      decoder,
    },
    control,
    stall,
  );
  let staged: StagedBlob;
  try {
    staged = await blobs.stage(guarded.chunks);
  } catch (err) {
    throw control.explain(
      err,
      () => control.fail("storage_error", `cannot stage the body: ${errorText(err)}`),
    );
  } finally {
    stall.stop();
  }
  const info = guarded.info();
  if (control.failure || !info) {
    // Aborted or timed out just as staging finished: never hand out a
    // result the caller was told not to expect.
    await staged.discard().catch(() => {});
    throw control.explain(null, () => control.fail("not_an_image", "no image header found"));
  }
  const caching = keptFor(cachingFrom(response.headers), dest.url.href, requestedUrl);
  return { ok: true, staged, info, finalUrl: dest.url.href, caching };
}

function toResult(failure: Failure): AttemptResult {
  return {
    ok: false,
    reason: failure.reason,
    detail: failure.detail,
    transient: isTransientReason(failure.reason),
    ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
  };
}

function errorText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  return e?.cause?.message ?? e?.message ?? String(err);
}

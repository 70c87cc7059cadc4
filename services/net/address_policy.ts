import type ipaddr from "ipaddr.js";
import {
  type HostRule,
  normaliseHostname,
  ruleMatchesAddress,
  ruleMatchesName,
} from "./host_rules.ts";
import { classifyAddress, parseIp } from "./special_ranges.ts";

/**
 * Where the fetcher may connect. The default (all false/empty) allows public
 * unicast addresses only.
 *
 * Precedence, highest first:
 * 1. `deny` (by name or address range, IPv6 embeddings included) refuses,
 *    even a public address or one that an allow rule covers;
 * 2. `allow` (by name or literal address range, port-specific when written
 *    with a port) permits, even a private or otherwise refused address;
 * 3. `allowPrivateNetworks` permits private ranges (RFC 1918, loopback,
 *    CGNAT, unique local, benchmarking) but never unspecified, multicast,
 *    broadcast, link-local, documentation or reserved ranges;
 * 4. otherwise only public unicast addresses are permitted.
 */
export interface AddressPolicy {
  allowPrivateNetworks: boolean;
  allow: HostRule[];
  deny: HostRule[];
}

/** Public unicast only, no rules. */
export const DEFAULT_POLICY: AddressPolicy = Object.freeze({
  allowPrivateNetworks: false,
  allow: [],
  deny: [],
});

/** A refused URL or destination, in the vocabulary of FailureReason. */
export interface Refusal {
  ok: false;
  reason: "invalid_url" | "blocked_address";
  detail: string;
}

/** A URL that passed the checks that need no DNS. */
export interface CheckedUrl {
  ok: true;
  url: URL;
  /** Lowercase, without brackets or trailing dot. */
  hostname: string;
  port: number;
  /** The IP when the URL names an address instead of a host name. */
  address: string | null;
}

/**
 * Checks everything about a URL that needs no DNS: it parses (with the
 * WHATWG parser, which turns `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`
 * and `0` into dotted quads and compresses IPv6), is http or https, carries
 * no credentials, is not denied by name, and, when the host is an IP
 * literal, that the address is allowed.
 */
export function checkUrl(input: string | URL, policy: AddressPolicy): CheckedUrl | Refusal {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return invalid(`not a valid URL: ${String(input).slice(0, 200)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return invalid(`only http and https URLs are fetched, not ${url.protocol}`);
  }
  // Credentials would be sent to whoever answers, and `http://trusted@evil/`
  // is a classic way to make a URL look like it goes somewhere else.
  if (url.username !== "" || url.password !== "") return invalid("URL contains credentials");
  const hostname = normaliseHostname(url.hostname);
  if (hostname === "") return invalid("URL has no host");
  const port = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;

  const ip = parseIp(hostname);
  const refusal = ip
    ? checkAddress(ip, { hostname, port }, policy)
    : checkName(hostname, port, policy);
  if (refusal) return { ok: false, reason: "blocked_address", detail: refusal };
  return { ok: true, url, hostname, port, address: ip ? ip.toString() : null };
}

/** A deny-by-name check, done before resolving so a denied name is never looked up. */
export function checkName(hostname: string, port: number, policy: AddressPolicy): string | null {
  const rule = policy.deny.find((r) => ruleMatchesName(r, hostname, port));
  return rule ? `${hostname} is denied by host rule "${rule.source}"` : null;
}

/**
 * Null when the fetcher may connect to `address` for `hostname:port`;
 * otherwise a sentence saying why not. Every address a name resolves to goes
 * through this, and one refusal refuses the URL.
 */
export function checkAddress(
  address: ipaddr.IPv4 | ipaddr.IPv6 | string,
  dest: { hostname: string; port: number },
  policy: AddressPolicy,
): string | null {
  const ip = typeof address === "string" ? parseIp(address) : address;
  if (!ip) return `${address} is not an IP address`;
  const { hostname, port } = dest;
  const shown = ip.kind() === "ipv6" ? `[${ip}]` : ip.toString();

  const denied = policy.deny.find((r) =>
    ruleMatchesName(r, hostname, port) || ruleMatchesAddress(r, ip, port, true)
  );
  if (denied) return `${hostname} (${shown}) is denied by host rule "${denied.source}"`;

  const allowed = policy.allow.some((r) =>
    ruleMatchesName(r, hostname, port) || ruleMatchesAddress(r, ip, port, false)
  );
  if (allowed) return null;

  const special = classifyAddress(ip);
  if (!special) return null;
  if (special.cls === "private" && policy.allowPrivateNetworks) return null;
  const via = hostname === ip.toString() ? "" : `${hostname} resolves to `;
  return `${via}${shown}, which is ${special.name}`;
}

function invalid(detail: string): Refusal {
  return { ok: false, reason: "invalid_url", detail };
}

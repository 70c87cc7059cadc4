import ipaddr from "ipaddr.js";
import { embeddedIPv4, parseIp } from "./special_ranges.ts";

/**
 * One entry of FETCH_ALLOW_HOSTS / FETCH_DENY_HOSTS.
 *
 * Syntax (comma-separated, whitespace ignored):
 * - `images.example.com`      exactly that host name
 * - `.example.com`            example.com and every name below it
 *                             (`*.example.com` is accepted as the same thing)
 * - `203.0.113.7`             one IPv4 address (any spelling the URL parser
 *                             accepts, e.g. `127.1`, is normalised)
 * - `10.0.0.0/8`              a CIDR range (dotted-quad network)
 * - `2001:db8::1`, `fd00::/8` an IPv6 address or range
 * - any of the above followed by `:port` to match only that port; IPv6 then
 *   needs brackets: `[::1]:8080`, `[fd00::/8]:443`.
 *
 * Plain data (no parsed objects) so a Config can be logged or cloned.
 */
export type HostRule =
  | {
    kind: "name";
    /** Lowercase ASCII (punycode), no trailing dot. */
    name: string;
    /** True for `.example.com`: the name itself and any subdomain. */
    subdomains: boolean;
    port: number | null;
    /** The entry as written, for messages. */
    source: string;
  }
  | {
    kind: "range";
    /** Network address as written (normalised). */
    network: string;
    prefixLength: number;
    port: number | null;
    source: string;
  };

/**
 * Parses a comma-separated list of host rules. Throws an Error naming the
 * bad entry and what is wrong with it.
 */
export function parseHostRules(csv: string): HostRule[] {
  return csv.split(",").map((s) => s.trim()).filter((s) => s !== "").map(parseHostRule);
}

/** Parses one host rule (see {@link HostRule} for the syntax). */
export function parseHostRule(entry: string): HostRule {
  const fail = (why: string): never => {
    throw new Error(`host rule "${entry}": ${why}`);
  };
  let host = entry;
  let portText: string | null = null;
  if (entry.startsWith("[")) {
    const close = entry.indexOf("]");
    if (close < 0) fail("missing ']'");
    host = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) fail("expected ':port' after ']'");
      portText = rest.slice(1);
    }
    if (!host.includes(":")) fail("brackets are only for IPv6 addresses");
  } else if ((entry.match(/:/g) ?? []).length === 1) {
    [host, portText] = entry.split(":");
  }
  const port = portText === null ? null : parsePort(portText, fail);
  if (host === "") fail("empty host");

  if (host.includes("/")) return parseRange(host, port, entry, fail);
  if (host.includes(":")) {
    const ip = parseIp(host) ?? fail("not a valid IPv6 address");
    return range(ip.toString(), ip.kind() === "ipv4" ? 32 : 128, port, entry);
  }

  const subdomains = host.startsWith(".") || host.startsWith("*.");
  const bare = host.replace(/^\*?\./, "");
  if (bare.includes("*")) fail("'*' is only allowed as a leading '*.'");
  // The URL parser would silently cut a name at these characters.
  if (/[\s/?#@\\%]/.test(bare)) fail("not a valid host name");
  let normalised: string;
  try {
    // The URL parser gives the same normalisation (case, punycode, numeric
    // IPv4 forms) that checkUrl() applies to the URLs being matched.
    normalised = new URL(`http://${bare}/`).hostname;
  } catch {
    return fail("not a valid host name or address");
  }
  const ip = parseIp(normalised);
  if (ip) {
    if (subdomains) fail("a leading '.' only makes sense on a host name");
    return range(ip.toString(), ip.kind() === "ipv4" ? 32 : 128, port, entry);
  }
  const name = normalised.replace(/\.$/, "");
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name)) fail("not a valid host name");
  return { kind: "name", name, subdomains, port, source: entry };
}

function parsePort(text: string, fail: (why: string) => never): number {
  if (!/^\d{1,5}$/.test(text)) fail(`bad port "${text}"`);
  const port = Number(text);
  if (port < 1 || port > 65535) fail(`port ${port} is outside 1-65535`);
  return port;
}

function parseRange(
  text: string,
  port: number | null,
  source: string,
  fail: (why: string) => never,
): HostRule {
  const [addr, bits] = text.split("/");
  // Only canonical network addresses in ranges: `10/8` style shorthand is
  // too easy to misread.
  const ip = parseIp(addr) ?? fail(`"${addr}" is not a dotted-quad IPv4 or an IPv6 address`);
  if (!/^\d{1,3}$/.test(bits ?? "")) fail(`bad prefix length "/${bits}"`);
  const prefixLength = Number(bits);
  const max = ip.kind() === "ipv4" ? 32 : 128;
  if (prefixLength > max) fail(`prefix length /${prefixLength} is longer than ${max}`);
  return range(ip.toString(), prefixLength, port, source);
}

function range(network: string, prefixLength: number, port: number | null, source: string) {
  return { kind: "range" as const, network, prefixLength, port, source };
}

/** Host name as rules compare it: lowercase, no brackets, no trailing dot. */
export function normaliseHostname(hostname: string): string {
  const bare = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  return bare.toLowerCase().replace(/\.$/, "");
}

// Rules stay plain data; their parsed network is kept alongside, per rule.
const networks = new WeakMap<HostRule, ipaddr.IPv4 | ipaddr.IPv6>();

function parsedNetwork(rule: HostRule & { kind: "range" }): ipaddr.IPv4 | ipaddr.IPv6 {
  let network = networks.get(rule);
  if (!network) {
    network = ipaddr.parse(rule.network);
    networks.set(rule, network);
  }
  return network;
}

function portMatches(rule: HostRule, port: number): boolean {
  return rule.port === null || rule.port === port;
}

/** Whether a name rule covers `hostname` (already normalised) on `port`. */
export function ruleMatchesName(rule: HostRule, hostname: string, port: number): boolean {
  if (rule.kind !== "name" || !portMatches(rule, port)) return false;
  return hostname === rule.name || (rule.subdomains && hostname.endsWith(`.${rule.name}`));
}

/**
 * Whether a range rule covers `address` on `port`. With `throughEmbedding`
 * (used for deny rules, which should err on the side of matching) an IPv6
 * address also matches through the IPv4 address it embeds and an IPv4
 * address through its IPv4-mapped form. Allow rules match the literal
 * address only, so allowing `127.0.0.1:8200` does not open `[::ffff:127.0.0.1]:8200`.
 */
export function ruleMatchesAddress(
  rule: HostRule,
  address: ipaddr.IPv4 | ipaddr.IPv6,
  port: number,
  throughEmbedding: boolean,
): boolean {
  if (rule.kind !== "range" || !portMatches(rule, port)) return false;
  const network = parsedNetwork(rule);
  const candidates: (ipaddr.IPv4 | ipaddr.IPv6)[] = [address];
  if (throughEmbedding) {
    if (address.kind() === "ipv6") {
      candidates.push(...embeddedIPv4(address as ipaddr.IPv6).map((e) => e.v4));
    } else {
      candidates.push((address as ipaddr.IPv4).toIPv4MappedAddress());
    }
  }
  return candidates.some((c) => c.kind() === network.kind() && c.match(network, rule.prefixLength));
}

import ipaddr from "ipaddr.js";

/**
 * How a non-public range is treated by the policy:
 * - `private`: an internal network someone may legitimately run images on;
 *   `allowPrivateNetworks` lifts the refusal.
 * - `never`: not a sensible fetch destination anywhere (unspecified,
 *   multicast, documentation, link-local with its cloud metadata service...);
 *   only an explicit allow rule lifts the refusal.
 */
export type RangeClass = "private" | "never";

/** Why an address is not public unicast. */
export interface SpecialRange {
  /** Human readable, e.g. `loopback` or `IPv4-mapped form of 10.0.0.1 (private)`. */
  name: string;
  cls: RangeClass;
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];
interface Entry {
  cidr: Cidr;
  name: string;
  cls: RangeClass;
}

function entry(cidr: string, name: string, cls: RangeClass): Entry {
  return { cidr: ipaddr.parseCIDR(cidr), name, cls };
}

// Kept as an explicit table (rather than ipaddr.js's range() names) so the
// policy is readable in one place and does not shift with library updates.
// More specific entries come first so the reported name is the precise one.
const V4: Entry[] = [
  entry("0.0.0.0/8", "unspecified (this network)", "never"),
  entry("10.0.0.0/8", "private (RFC 1918)", "private"),
  entry("100.64.0.0/10", "carrier-grade NAT (RFC 6598)", "private"),
  entry("127.0.0.0/8", "loopback", "private"),
  // Link-local holds the cloud metadata service (169.254.169.254), the
  // classic SSRF target: allowPrivateNetworks does not open it.
  entry("169.254.0.0/16", "link-local", "never"),
  entry("172.16.0.0/12", "private (RFC 1918)", "private"),
  entry("192.0.0.0/24", "IETF protocol assignments", "never"),
  entry("192.0.2.0/24", "documentation (TEST-NET-1)", "never"),
  entry("192.88.99.0/24", "6to4 relay anycast (deprecated)", "never"),
  entry("192.168.0.0/16", "private (RFC 1918)", "private"),
  entry("198.18.0.0/15", "benchmarking", "private"),
  entry("198.51.100.0/24", "documentation (TEST-NET-2)", "never"),
  entry("203.0.113.0/24", "documentation (TEST-NET-3)", "never"),
  entry("224.0.0.0/4", "multicast", "never"),
  entry("255.255.255.255/32", "broadcast", "never"),
  entry("240.0.0.0/4", "reserved", "never"),
];

const V6: Entry[] = [
  entry("::/128", "unspecified", "never"),
  entry("::1/128", "loopback", "private"),
  entry("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)", "never"),
  entry("100::/64", "discard-only", "never"),
  entry("2001::/23", "IETF protocol assignments", "never"),
  entry("2001:db8::/32", "documentation", "never"),
  entry("3fff::/20", "documentation", "never"),
  entry("fc00::/7", "unique local", "private"),
  entry("fe80::/10", "link-local", "never"),
  entry("fec0::/10", "site-local (deprecated)", "private"),
  entry("ff00::/8", "multicast", "never"),
];

/** Everything public on the IPv6 internet today lives in 2000::/3. */
const V6_GLOBAL = ipaddr.parseCIDR("2000::/3");

/** IPv6 prefixes whose addresses carry an IPv4 address, and where it sits. */
const EMBEDDINGS: { cidr: Cidr; form: string; extract: (b: number[]) => number[][] }[] = [
  { cidr: ipaddr.parseCIDR("::ffff:0:0/96"), form: "IPv4-mapped", extract: (b) => [b.slice(12)] },
  {
    cidr: ipaddr.parseCIDR("::ffff:0:0:0/96"),
    form: "IPv4-translated (RFC 6145)",
    extract: (b) => [b.slice(12)],
  },
  { cidr: ipaddr.parseCIDR("::/96"), form: "IPv4-compatible", extract: (b) => [b.slice(12)] },
  { cidr: ipaddr.parseCIDR("64:ff9b::/96"), form: "NAT64", extract: (b) => [b.slice(12)] },
  { cidr: ipaddr.parseCIDR("2002::/16"), form: "6to4", extract: (b) => [b.slice(2, 6)] },
  {
    // Teredo: server in bits 32-63, client (obfuscated by inversion) in the
    // last 32 bits. Both are judged: either one being internal is suspicious.
    cidr: ipaddr.parseCIDR("2001::/32"),
    form: "Teredo",
    extract: (b) => [b.slice(4, 8), b.slice(12).map((x) => x ^ 0xff)],
  },
];

/** Parses an IP literal (no brackets), or returns null when it is not one. */
export function parseIp(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  // isValid accepts odd IPv4 spellings (hex, octal, short). Addresses reach
  // this function already normalised by the URL parser or DNS; anything else
  // must be a canonical dotted quad or IPv6 literal.
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare);
  if (ipaddr.IPv6.isValid(bare) && !bare.includes("%")) return ipaddr.IPv6.parse(bare);
  return null;
}

/**
 * The IPv4 addresses embedded in an IPv6 address (mapped, compatible,
 * translated, NAT64, 6to4, Teredo), with the name of the form; empty when
 * the address embeds none.
 */
export function embeddedIPv4(address: ipaddr.IPv6): { form: string; v4: ipaddr.IPv4 }[] {
  for (const e of EMBEDDINGS) {
    if (address.match(e.cidr)) {
      const bytes = address.toByteArray();
      return e.extract(bytes).map((b) => ({ form: e.form, v4: new ipaddr.IPv4(b) }));
    }
  }
  return [];
}

function lookup(table: Entry[], address: ipaddr.IPv4 | ipaddr.IPv6): Entry | undefined {
  return table.find((e) => address.kind() === e.cidr[0].kind() && address.match(e.cidr));
}

/**
 * Null when `address` is public unicast; otherwise which special range it is
 * in. IPv6 forms that embed IPv4 are judged by the embedded address, so
 * `::ffff:10.0.0.1` is refused exactly like `10.0.0.1`.
 */
export function classifyAddress(address: ipaddr.IPv4 | ipaddr.IPv6): SpecialRange | null {
  if (address.kind() === "ipv4") {
    const hit = lookup(V4, address);
    return hit ? { name: hit.name, cls: hit.cls } : null;
  }
  const v6 = address as ipaddr.IPv6;
  // ::/128 and ::1 sit inside the IPv4-compatible prefix; name them as such.
  const exact = lookup(V6.slice(0, 2), v6);
  if (exact) return { name: exact.name, cls: exact.cls };
  const embedded = embeddedIPv4(v6);
  for (const { form, v4 } of embedded) {
    const inner = classifyAddress(v4);
    if (inner) return { name: `${form} form of ${v4} (${inner.name})`, cls: inner.cls };
  }
  if (embedded.length > 0) return null;
  const hit = lookup(V6, v6);
  if (hit) return { name: hit.name, cls: hit.cls };
  if (!v6.match(V6_GLOBAL)) return { name: "not global unicast (outside 2000::/3)", cls: "never" };
  return null;
}

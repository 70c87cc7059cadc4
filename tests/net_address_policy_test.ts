/**
 * The address policy as pure functions, plus the resolver and the vetting of
 * resolved records. Non-loopback addresses appear here only as strings given
 * to the policy, or as answers of a fake resolver paired with a recording
 * connector that cannot open sockets: no packet leaves the machine.
 */
import assert from "node:assert/strict";
import type { BlobStore } from "../services/blobs/blob_store.ts";
import { createFetcher, type FetchSettings } from "../services/fetch/fetcher.ts";
import {
  type AddressPolicy,
  checkAddress,
  checkUrl,
  DEFAULT_POLICY,
} from "../services/net/address_policy.ts";
import type { Connector, PinnedTarget } from "../services/net/connector.ts";
import { vetDestination } from "../services/net/destination.ts";
import { parseHostRules } from "../services/net/host_rules.ts";
import { DnsResolver, ResolveError, type Resolver } from "../services/net/resolver.ts";

function policy(p: Partial<AddressPolicy & { allowCsv: string; denyCsv: string }> = {}) {
  return {
    allowPrivateNetworks: p.allowPrivateNetworks ?? false,
    allow: p.allow ?? parseHostRules(p.allowCsv ?? ""),
    deny: p.deny ?? parseHostRules(p.denyCsv ?? ""),
  };
}

function verdict(url: string, pol: AddressPolicy = DEFAULT_POLICY): string {
  const r = checkUrl(url, pol);
  return r.ok ? "ok" : r.reason;
}

/** The URL host for an IP: IPv6 in brackets. */
function hostOf(ip: string): string {
  return ip.includes(":") ? `[${ip}]` : ip;
}

// --- the IPv4 matrix --------------------------------------------------------------------------

const REFUSED_V4: [string, string][] = [
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "this network"],
  ["10.0.0.1", "private"],
  ["10.255.255.255", "private"],
  ["100.64.0.1", "carrier-grade NAT"],
  ["100.127.255.254", "carrier-grade NAT"],
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["169.254.169.254", "link-local"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.0.0.1", "IETF protocol assignments"],
  ["192.0.2.1", "documentation"],
  ["192.88.99.1", "6to4 relay"],
  ["192.168.1.1", "private"],
  ["198.18.0.1", "benchmarking"],
  ["198.19.255.255", "benchmarking"],
  ["198.51.100.7", "documentation"],
  ["203.0.113.9", "documentation"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["240.0.0.1", "reserved"],
  ["255.255.255.255", "broadcast"],
];

const PUBLIC_V4 = ["1.1.1.1", "8.8.8.8", "93.184.215.14", "172.32.0.1", "100.128.0.1", "11.0.0.1"];

for (const [ip, name] of REFUSED_V4) {
  Deno.test(`checkUrl() refuses ${ip} (${name})`, () => {
    const r = checkUrl(`http://${ip}/x.png`, DEFAULT_POLICY);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.reason === "blocked_address");
    assert.ok(!r.ok && r.detail.includes(name), !r.ok ? r.detail : "");
  });
}

Deno.test("checkUrl() accepts public IPv4 addresses, including neighbours of refused ranges", () => {
  for (const ip of PUBLIC_V4) assert.equal(verdict(`http://${ip}/x.png`), "ok", ip);
});

// --- textual forms ----------------------------------------------------------------------------

const SPELLINGS_OF: Record<string, string[]> = {
  "127.0.0.1": [
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "127.1",
    "127.0.1",
    "0x7f.1",
    "017700000001",
    "127.0.0.1.",
  ],
  "10.0.0.1": ["167772161", "0xa000001", "012.0.0.1", "10.1", "10.0.1"],
  "169.254.169.254": ["2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518"],
  "0.0.0.0": ["0", "0x0", "00", "0.0"],
};

for (const [canonical, spellings] of Object.entries(SPELLINGS_OF)) {
  Deno.test(`checkUrl() refuses every textual form of ${canonical}`, () => {
    for (const s of spellings) {
      const r = checkUrl(`http://${s}:8080/x.png`, DEFAULT_POLICY);
      assert.equal(r.ok ? "ok" : r.reason, "blocked_address", s);
      assert.ok(!r.ok && r.detail.includes(canonical), `${s}: ${!r.ok && r.detail}`);
    }
  });
}

Deno.test("checkUrl() normalises the host so rules and refusals see the canonical address", () => {
  const r = checkUrl("http://0x7f.1:8200/x", policy({ allowCsv: "127.0.0.1:8200" }));
  assert.ok(r.ok);
  assert.equal(r.address, "127.0.0.1");
  assert.equal(r.port, 8200);
});

// --- IPv6 -------------------------------------------------------------------------------------

const REFUSED_V6: [string, string][] = [
  ["::", "unspecified"],
  ["::1", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback"],
  ["fe80::1", "link-local"],
  ["febf::1", "link-local"],
  ["fc00::1", "unique local"],
  ["fd12:3456::1", "unique local"],
  ["fec0::1", "site-local"],
  ["ff02::1", "multicast"],
  ["ff0e::1", "multicast"],
  ["2001:db8::1", "documentation"],
  ["3fff::1", "documentation"],
  ["100::1", "discard-only"],
  ["2001:2::1", "IETF protocol assignments"],
  ["2001:10::1", "IETF protocol assignments"],
  ["64:ff9b:1::a00:1", "local-use NAT64"],
  ["4000::1", "not global unicast"],
  ["5f00::1", "not global unicast"],
  ["::ffff:0:0", "IPv4-mapped"], // ::ffff:0.0.0.0
];

for (const [ip, name] of REFUSED_V6) {
  Deno.test(`checkUrl() refuses [${ip}] (${name})`, () => {
    const r = checkUrl(`http://[${ip}]/x.png`, DEFAULT_POLICY);
    assert.equal(r.ok ? "ok" : r.reason, "blocked_address");
    assert.ok(!r.ok && r.detail.includes(name), !r.ok ? r.detail : "");
  });
}

Deno.test("checkUrl() accepts public IPv6 addresses", () => {
  for (const ip of ["2606:4700:4700::1111", "2a00:1450:4001:800::200e", "2001:4860::8888"]) {
    assert.equal(verdict(`http://[${ip}]/`), "ok", ip);
  }
});

Deno.test("checkUrl() refuses an IPv6 zone id and a bracketed IPv4 as invalid_url", () => {
  assert.equal(verdict("http://[fe80::1%25eth0]/"), "invalid_url");
  assert.equal(verdict("http://[127.0.0.1]/"), "invalid_url");
});

// --- IPv6 forms that embed IPv4 ---------------------------------------------------------------

function octets(ip: string): number[] {
  return ip.split(".").map(Number);
}
function hex16(a: number, b: number): string {
  return ((a << 8) | b).toString(16);
}
/** Every IPv6 form that carries `v4`, by name. */
function embeddings(v4: string): Record<string, string> {
  const [a, b, c, d] = octets(v4);
  const hi = hex16(a, b), lo = hex16(c, d);
  const inv = octets(v4).map((x) => x ^ 0xff);
  return {
    "IPv4-mapped (dotted)": `::ffff:${v4}`,
    "IPv4-mapped (hex)": `::ffff:${hi}:${lo}`,
    "IPv4-compatible": `::${v4}`,
    "IPv4-translated": `::ffff:0:${v4}`,
    "NAT64": `64:ff9b::${v4}`,
    "6to4": `2002:${hi}:${lo}::1`,
    "Teredo": `2001:0:4136:e378:8000:63bf:${hex16(inv[0], inv[1])}:${hex16(inv[2], inv[3])}`,
  };
}

for (const [v4, name] of REFUSED_V4) {
  Deno.test(`checkUrl() refuses the IPv6 forms embedding ${v4} (${name})`, () => {
    for (const [form, v6] of Object.entries(embeddings(v4))) {
      const r = checkUrl(`http://[${v6}]/x.png`, DEFAULT_POLICY);
      assert.equal(r.ok ? "ok" : r.reason, "blocked_address", `${form} ${v6}`);
    }
  });
}

Deno.test("checkUrl() refuses the IPv4-mapped form of 10.0.0.1", () => {
  const r = checkUrl("http://[::ffff:10.0.0.1]/", DEFAULT_POLICY);
  assert.ok(!r.ok);
  assert.match(r.detail, /IPv4-mapped form of 10\.0\.0\.1 \(private/);
});

Deno.test("checkUrl() judges a Teredo address by its inverted client address", () => {
  // Client 192.168.1.1 inverted is 3f57:fefe; the server part (65.54.227.120) is public.
  const r = checkUrl("http://[2001:0:4136:e378:8000:63bf:3f57:fefe]/", DEFAULT_POLICY);
  assert.ok(!r.ok);
  assert.match(r.detail, /Teredo form of 192\.168\.1\.1/);
  // The same bits not inverted would be 63.87.254.254, public: allowed.
  assert.equal(verdict("http://[2001:0:4136:e378:8000:63bf:c0a8:101]/"), "ok");
});

Deno.test("checkUrl() accepts IPv6 forms embedding a public IPv4 address", () => {
  for (const [form, v6] of Object.entries(embeddings("8.8.8.8"))) {
    assert.equal(verdict(`http://[${v6}]/`), "ok", `${form} ${v6}`);
  }
});

// --- URL shape --------------------------------------------------------------------------------

Deno.test("checkUrl() refuses URLs with credentials as invalid_url", () => {
  for (
    const url of ["http://user:pass@8.8.8.8/", "http://user@8.8.8.8/", "https://:pw@example.com/"]
  ) {
    assert.equal(verdict(url), "invalid_url", url);
  }
});

Deno.test("checkUrl() refuses schemes other than http and https as invalid_url", () => {
  for (
    const url of [
      "ftp://8.8.8.8/x.png",
      "file:///etc/passwd",
      "data:image/png;base64,AAAA",
      "javascript:alert(1)",
      "gopher://8.8.8.8/",
      "ws://8.8.8.8/",
    ]
  ) {
    assert.equal(verdict(url), "invalid_url", url);
  }
});

Deno.test("checkUrl() refuses unparsable URLs as invalid_url", () => {
  for (
    const url of [
      "",
      "not a url",
      "http://",
      "http://exa mple.com/",
      "http://foo.123/",
      "//8.8.8.8/",
    ]
  ) {
    assert.equal(verdict(url), "invalid_url", JSON.stringify(url));
  }
});

Deno.test("checkUrl() lets a host name through to resolution and reports the default port", () => {
  const r = checkUrl("https://Images.Example.com./a.png", DEFAULT_POLICY);
  assert.ok(r.ok);
  assert.equal(r.hostname, "images.example.com");
  assert.equal(r.port, 443);
  assert.equal(r.address, null);
});

// --- allowPrivateNetworks ---------------------------------------------------------------------

Deno.test("checkUrl() with allowPrivateNetworks accepts private ranges but not never-ranges", () => {
  const pol = policy({ allowPrivateNetworks: true });
  for (const ip of ["10.0.0.1", "127.0.0.1", "192.168.1.1", "100.64.0.1", "fd00::1", "::1"]) {
    assert.equal(verdict(`http://${hostOf(ip)}/`, pol), "ok", ip);
  }
  assert.equal(verdict("http://[::ffff:10.0.0.1]/", pol), "ok", "embedded forms follow suit");
  for (
    const ip of ["0.0.0.0", "169.254.169.254", "224.0.0.1", "255.255.255.255", "fe80::1", "ff02::1"]
  ) {
    assert.equal(verdict(`http://${hostOf(ip)}/`, pol), "blocked_address", ip);
  }
});

// --- allow rules ------------------------------------------------------------------------------

Deno.test("checkUrl() allows exactly the address and port of an allow rule 127.0.0.1:8200", () => {
  const pol = policy({ allowCsv: "127.0.0.1:8200" });
  assert.equal(verdict("http://127.0.0.1:8200/x", pol), "ok");
  assert.equal(verdict("http://2130706433:8200/x", pol), "ok", "same address, other spelling");
  assert.equal(verdict("http://127.0.0.1:8201/x", pol), "blocked_address");
  assert.equal(verdict("http://127.0.0.1/x", pol), "blocked_address");
  assert.equal(verdict("http://127.0.0.2:8200/x", pol), "blocked_address");
  assert.equal(verdict("http://[::1]:8200/x", pol), "blocked_address");
  assert.equal(verdict("http://[::ffff:127.0.0.1]:8200/x", pol), "blocked_address");
});

Deno.test("checkUrl() allows a CIDR allow rule on any port, or on its port only", () => {
  const any = policy({ allowCsv: "10.0.0.0/8" });
  assert.equal(verdict("http://10.1.2.3/", any), "ok");
  assert.equal(verdict("http://10.1.2.3:9999/", any), "ok");
  assert.equal(verdict("http://11.0.0.1/", any), "ok", "public stays allowed");
  assert.equal(verdict("http://192.168.0.1/", any), "blocked_address");
  const port = policy({ allowCsv: "192.168.0.0/16:443" });
  assert.equal(verdict("https://192.168.4.5/", port), "ok");
  assert.equal(verdict("http://192.168.4.5/", port), "blocked_address");
});

Deno.test("checkUrl() allows IPv6 allow rules with and without ports", () => {
  const pol = policy({ allowCsv: "[::1]:8080, fd00::/8, [fe80::/10]:81" });
  assert.equal(verdict("http://[::1]:8080/", pol), "ok");
  assert.equal(verdict("http://[::1]:8081/", pol), "blocked_address");
  assert.equal(verdict("http://[fd12::5]:1234/", pol), "ok");
  assert.equal(verdict("http://[fe80::1]:81/", pol), "ok");
  assert.equal(verdict("http://[fe80::1]:80/", pol), "blocked_address");
});

Deno.test("checkAddress() lets an allow rule by name cover the addresses the name resolves to", () => {
  const pol = policy({ allowCsv: "images.internal:8443" });
  assert.equal(checkAddress("10.0.0.7", { hostname: "images.internal", port: 8443 }, pol), null);
  assert.match(
    checkAddress("10.0.0.7", { hostname: "images.internal", port: 443 }, pol) ?? "",
    /resolves to 10\.0\.0\.7, which is private/,
  );
  assert.notEqual(checkAddress("10.0.0.7", { hostname: "other.internal", port: 8443 }, pol), null);
});

// --- deny rules -------------------------------------------------------------------------------

Deno.test("checkUrl() denies an exact name but not its subdomains", () => {
  const pol = policy({ denyCsv: "tracker.example" });
  assert.equal(verdict("http://tracker.example/x", pol), "blocked_address");
  assert.equal(verdict("http://TRACKER.example./x", pol), "blocked_address");
  assert.equal(verdict("http://cdn.tracker.example/x", pol), "ok");
});

Deno.test("checkUrl() denies a name and its subdomains with the .example.com form", () => {
  for (const rule of [".example.com", "*.example.com"]) {
    const pol = policy({ denyCsv: rule });
    assert.equal(verdict("http://example.com/", pol), "blocked_address", rule);
    assert.equal(verdict("http://a.b.example.com/", pol), "blocked_address", rule);
    assert.equal(verdict("http://notexample.com/", pol), "ok", rule);
  }
});

Deno.test("checkUrl() denies a public range, including its IPv6 embeddings", () => {
  const pol = policy({ denyCsv: "93.184.0.0/16" });
  assert.equal(verdict("http://93.184.215.14/", pol), "blocked_address");
  assert.equal(verdict("http://[::ffff:93.184.215.14]/", pol), "blocked_address");
  assert.equal(verdict("http://[2002:5db8:d70e::1]/", pol), "blocked_address");
  assert.equal(verdict("http://93.185.0.1/", pol), "ok");
});

Deno.test("checkUrl() lets deny win over allow and over allowPrivateNetworks", () => {
  const pol = policy({
    allowPrivateNetworks: true,
    allowCsv: "10.0.0.0/8",
    denyCsv: "10.9.0.0/16, 8.8.8.8:443",
  });
  assert.equal(verdict("http://10.1.0.1/", pol), "ok");
  assert.equal(verdict("http://10.9.0.1/", pol), "blocked_address");
  assert.equal(verdict("https://8.8.8.8/", pol), "blocked_address");
  assert.equal(verdict("http://8.8.8.8/", pol), "ok", "deny with a port denies that port only");
});

Deno.test("checkAddress() applies a deny rule by name to every resolved address", () => {
  const pol = policy({ denyCsv: ".evil.test" });
  assert.match(
    checkAddress("8.8.8.8", { hostname: "cdn.evil.test", port: 80 }, pol) ?? "",
    /denied by host rule ".evil.test"/,
  );
});

// --- parseHostRules ---------------------------------------------------------------------------

Deno.test("parseHostRules() reads every supported form", () => {
  const rules = parseHostRules(
    " images.example.com , .example.org,*.example.net:8443, 127.0.0.1:8200, 10.0.0.0/8, " +
      "10.0.0.0/8:80, [::1]:8080, fd00::/8, [fd00::/8]:443, 2001:db8::1, 2130706433, ,",
  );
  assert.deepEqual(
    rules.map((r) =>
      r.kind === "name"
        ? `name ${r.subdomains ? "." : ""}${r.name} ${r.port}`
        : `range ${r.network}/${r.prefixLength} ${r.port}`
    ),
    [
      "name images.example.com null",
      "name .example.org null",
      "name .example.net 8443",
      "range 127.0.0.1/32 8200",
      "range 10.0.0.0/8 null",
      "range 10.0.0.0/8 80",
      "range ::1/128 8080",
      "range fd00::/8 null",
      "range fd00::/8 443",
      "range 2001:db8::1/128 null",
      "range 127.0.0.1/32 null",
    ],
  );
  assert.deepEqual(parseHostRules(""), []);
  assert.deepEqual(parseHostRules(" , "), []);
});

Deno.test("parseHostRules() throws a readable error naming the bad entry", () => {
  const bad: [string, RegExp][] = [
    ["10.0.0.0/33", /prefix length \/33/],
    ["::/129", /prefix length \/129/],
    ["10/8", /dotted-quad/],
    ["10.0.0.0/x", /prefix length/],
    ["1.2.3.4:0", /outside 1-65535/],
    ["1.2.3.4:70000", /outside 1-65535/],
    ["example.com:http", /bad port "http"/],
    ["[::1", /missing '\]'/],
    ["[::1]8080", /expected ':port'/],
    ["[127.0.0.1]:80", /brackets are only for IPv6/],
    ["exa mple.com", /not a valid host name/],
    ["a.*.example.com", /'\*' is only allowed/],
    [".10.0.0.1", /leading '.'/],
    ["foo/bar", /dotted-quad/],
    ["example.com/path", /dotted-quad/],
    ["user@example.com", /not a valid host name/],
    ["1:2:3", /not a valid IPv6/],
    [":80", /empty host/],
  ];
  for (const [entry, message] of bad) {
    assert.throws(() => parseHostRules(`good.example, ${entry}`), (err: Error) => {
      assert.ok(err.message.includes(`"${entry}"`), `${entry}: ${err.message}`);
      assert.match(err.message, message, entry);
      return true;
    });
  }
});

// --- resolver ---------------------------------------------------------------------------------

/** A DNS stand-in: fixed answers, counts and delays queries. */
function fakeDns(answers: Record<string, { A?: string[]; AAAA?: string[] }>, delayMs = 0) {
  const queries: string[] = [];
  let active = 0, maxActive = 0;
  const lookup = async (name: string, type: "A" | "AAAA") => {
    queries.push(`${name} ${type}`);
    active++;
    maxActive = Math.max(maxActive, active);
    try {
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      const found = answers[name]?.[type];
      if (!found) throw new Deno.errors.NotFound(`no ${type} for ${name}`);
      return found;
    } finally {
      active--;
    }
  };
  return {
    lookup,
    queries,
    get maxActive() {
      return maxActive;
    },
  };
}

Deno.test("DnsResolver returns A and AAAA records in canonical form", async () => {
  const dns = fakeDns({ "img.test": { A: ["192.0.2.10"], AAAA: ["2001:DB8:0:0::1"] } });
  const resolver = new DnsResolver({ lookup: dns.lookup });
  assert.deepEqual(await resolver.resolve("IMG.test."), ["192.0.2.10", "2001:db8::1"]);
});

Deno.test("DnsResolver caches a resolution until its TTL runs out", async () => {
  const dns = fakeDns({ "img.test": { A: ["192.0.2.10"] } });
  const resolver = new DnsResolver({ lookup: dns.lookup, ttlMs: 50 });
  await resolver.resolve("img.test");
  await resolver.resolve("img.test");
  assert.equal(dns.queries.length, 2, "one A and one AAAA query");
  await new Promise((r) => setTimeout(r, 80));
  await resolver.resolve("img.test");
  assert.equal(dns.queries.length, 4);
});

Deno.test("DnsResolver keeps its cache within maxEntries", async () => {
  const names = ["a", "b", "c"].map((n) => `${n}.test`);
  const dns = fakeDns(Object.fromEntries(names.map((n) => [n, { A: ["192.0.2.1"] }])));
  const resolver = new DnsResolver({ lookup: dns.lookup, maxEntries: 2 });
  for (const n of names) await resolver.resolve(n);
  dns.queries.length = 0;
  await resolver.resolve("c.test");
  await resolver.resolve("b.test");
  assert.equal(dns.queries.length, 0, "the two newest are cached");
  await resolver.resolve("a.test");
  assert.equal(dns.queries.length, 2, "the oldest was evicted");
});

Deno.test("DnsResolver caps concurrent lookups and shares one lookup per name", async () => {
  const names = Array.from({ length: 6 }, (_, i) => `h${i}.test`);
  const dns = fakeDns(Object.fromEntries(names.map((n) => [n, { A: ["192.0.2.1"] }])), 20);
  const resolver = new DnsResolver({ lookup: dns.lookup, maxConcurrent: 2 });
  await Promise.all([...names, ...names].map((n) => resolver.resolve(n)));
  // Two names at a time, each name asking A and AAAA at once.
  assert.equal(dns.maxActive, 4);
  assert.equal(dns.queries.length, 12, "duplicates shared the in-flight lookup");
});

Deno.test("DnsResolver answers localhost without DNS", async () => {
  const dns = fakeDns({});
  const resolver = new DnsResolver({ lookup: dns.lookup });
  assert.deepEqual(await resolver.resolve("localhost"), ["127.0.0.1", "::1"]);
  assert.deepEqual(await resolver.resolve("img.localhost"), ["127.0.0.1", "::1"]);
  assert.equal(dns.queries.length, 0);
});

Deno.test("DnsResolver rejects a name without records with ResolveError", async () => {
  const resolver = new DnsResolver({ lookup: fakeDns({}).lookup });
  await assert.rejects(resolver.resolve("nowhere.test"), ResolveError);
});

// --- vetting every resolved record, with a connector that cannot connect ----------------------

/** Records what it was asked to connect to and never opens a socket. */
class RecordingConnector implements Connector {
  readonly asked: { url: string; target: PinnedTarget }[] = [];
  request(url: URL, target: PinnedTarget): Promise<never> {
    this.asked.push({ url: url.href, target });
    return Promise.reject(new TypeError("recording connector: no sockets here"));
  }
  close(): void {}
}

const noBlobs: BlobStore = {
  stage: () => Promise.reject(new Error("no staging in these tests")),
  get: () => Promise.resolve(null),
  stat: () => Promise.resolve(null),
  delete: () => Promise.resolve(),
  list: async function* () {},
};

function fetchSettings(pol: AddressPolicy = DEFAULT_POLICY): FetchSettings {
  return {
    maxImageBytes: 1 << 20,
    maxImagePixels: 1e8,
    totalTimeoutMs: 2_000,
    connectTimeoutMs: 1_000,
    stallTimeoutMs: 1_000,
    maxRedirects: 5,
    userAgent: "test",
    policy: pol,
  };
}

function fixedResolver(addresses: string[]): Resolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolve: (host) => {
      asked.push(host);
      return Promise.resolve(addresses);
    },
  };
}

Deno.test("attempt() refuses a name with one public and one private record without connecting", async () => {
  for (const records of [["93.184.215.14", "10.0.0.5"], ["10.0.0.5", "93.184.215.14"]]) {
    const connector = new RecordingConnector();
    const resolver = fixedResolver(records);
    const fetcher = createFetcher(fetchSettings(), { blobs: noBlobs, resolver, connector });
    const result = await fetcher.attempt("http://mixed.test/img.png");
    fetcher.close();
    assert.deepEqual(resolver.asked, ["mixed.test"]);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.reason === "blocked_address", JSON.stringify(result));
    assert.ok(!result.ok && result.detail.includes("10.0.0.5"));
    assert.deepEqual(connector.asked, [], "never asked to connect");
  }
});

Deno.test("attempt() refuses a name resolving to an IPv4-mapped private address without connecting", async () => {
  const connector = new RecordingConnector();
  const fetcher = createFetcher(fetchSettings(), {
    blobs: noBlobs,
    resolver: fixedResolver(["::ffff:169.254.169.254"]),
    connector,
  });
  const result = await fetcher.attempt("http://metadata.test/latest");
  fetcher.close();
  assert.ok(!result.ok && result.reason === "blocked_address");
  assert.deepEqual(connector.asked, []);
});

Deno.test("attempt() asks the connector for exactly the vetted addresses, in order", async () => {
  const connector = new RecordingConnector();
  const fetcher = createFetcher(fetchSettings(), {
    blobs: noBlobs,
    resolver: fixedResolver(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]),
    connector,
  });
  const result = await fetcher.attempt("https://public.test/img.png");
  fetcher.close();
  assert.deepEqual(connector.asked, [
    { url: "https://public.test/img.png", target: { address: "93.184.215.14", port: 443 } },
    {
      url: "https://public.test/img.png",
      target: { address: "2606:2800:21f:cb07:6820:80da:af6b:8b2c", port: 443 },
    },
  ]);
  assert.ok(!result.ok && result.reason === "unreachable" && result.transient);
});

Deno.test("attempt() never resolves a name that a deny rule refuses", async () => {
  const connector = new RecordingConnector();
  const resolver = fixedResolver(["93.184.215.14"]);
  const fetcher = createFetcher(fetchSettings(policy({ denyCsv: ".blocked.test" })), {
    blobs: noBlobs,
    resolver,
    connector,
  });
  const result = await fetcher.attempt("http://cdn.blocked.test/x.png");
  fetcher.close();
  assert.ok(!result.ok && result.reason === "blocked_address");
  assert.deepEqual(resolver.asked, []);
  assert.deepEqual(connector.asked, []);
});

Deno.test("vetDestination() reports a resolver failure as unreachable", async () => {
  const r = await vetDestination("http://gone.test/", DEFAULT_POLICY, {
    resolve: () => Promise.reject(new ResolveError("cannot resolve gone.test: NXDOMAIN")),
  });
  assert.ok(!r.ok && r.reason === "unreachable");
  assert.match(!r.ok ? r.detail : "", /NXDOMAIN/);
});

Deno.test("vetDestination() refuses a resolver answer that is not an IP address", async () => {
  const r = await vetDestination("http://odd.test/", DEFAULT_POLICY, fixedResolver(["odd"]));
  assert.ok(!r.ok && r.reason === "blocked_address");
});

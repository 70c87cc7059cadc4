import { z } from "zod";
import { parseHostRules } from "./net/host_rules.ts";

const MiB = 1024 * 1024;

const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);

const bool = (def: boolean) =>
  z.enum(["true", "false", "1", "0", "yes", "no"]).default(def ? "true" : "false")
    .transform((v) => v === "true" || v === "1" || v === "yes");

const hostRules = z.string().default("").transform((csv, ctx) => {
  try {
    return parseHostRules(csv);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

/** `whsec_<base64>` (the Standard Webhooks form) or any other non-empty string. */
function isWebhookSecret(secret: string | undefined): boolean {
  if (secret === undefined || !secret.startsWith("whsec_")) return true;
  const b64 = secret.slice("whsec_".length);
  return b64.length > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(b64) && b64.length % 4 === 0;
}

/** Every setting the service reads from its environment, with defaults. */
const EnvSchema = z.object({
  PORT: int(8000, 0, 65535),
  HOSTNAME: z.string().min(1).default("127.0.0.1"),
  DATA_DIR: z.string().min(1).default("./data"),
  KV_PATH: z.string().min(1).optional(),
  WORKER_CONCURRENCY: int(32, 1, 1024),
  PER_HOST_CONCURRENCY: int(8, 1, 1024),
  MAX_IMAGE_BYTES: int(50 * MiB, 1),
  MAX_IMAGE_PIXELS: int(100_000_000, 1),
  FETCH_TIMEOUT_MS: int(30_000, 1),
  FETCH_CONNECT_TIMEOUT_MS: int(10_000, 1),
  FETCH_STALL_TIMEOUT_MS: int(10_000, 1),
  FETCH_RETRIES: int(3, 0, 10),
  FETCH_RETRY_BASE_MS: int(1_000, 1),
  FETCH_RETRY_AFTER_CAP_MS: int(60_000, 0),
  FETCH_USER_AGENT: z.string().min(1).default(
    "image-ingest/1.0 (image downloader; set FETCH_USER_AGENT to add a contact address)",
  ),
  ALLOW_PRIVATE_NETWORKS: bool(false),
  FETCH_ALLOW_HOSTS: hostRules,
  FETCH_DENY_HOSTS: hostRules,
  LEASE_MS: int(30_000, 1_000),
  SWEEP_INTERVAL_MS: int(5_000, 100),
  SHUTDOWN_GRACE_MS: int(5_000, 0),
  CONTENT_CACHE_BYTES: int(64 * MiB, 0),
  CONTENT_CACHE_ITEM_BYTES: int(1 * MiB, 0),
  // Sent as it is in a response header: visible ASCII and spaces only.
  CONTENT_CACHE_CONTROL: z.string().regex(/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/, {
    message: "must be a header value: visible ASCII characters and spaces",
  }).default("public, max-age=3600"),
  INDEX_CACHE_MS: int(1_000, 0),
  EVENTS_HEARTBEAT_MS: int(15_000, 10),
  EVENTS_POLL_MS: int(1_000, 10),
  WEBHOOK_SECRET: z.string().min(1).optional().refine(isWebhookSecret, {
    message: "a whsec_ secret must be followed by base64",
  }),
  WEBHOOK_TIMEOUT_MS: int(10_000, 1),
  WEBHOOK_RETRIES: int(12, 0, 50),
  WEBHOOK_RETRY_BASE_MS: int(5_000, 1),
  // Unset: one per core (navigator.hardwareConcurrency), read in toConfig.
  TRANSFORM_CONCURRENCY: z.coerce.number().int().min(1).max(1024).optional(),
  TRANSFORM_QUEUE: int(64, 0, 100_000),
  // Fractional hours are allowed (0.001 is 3.6 s), which is how tests see jobs expire.
  JOB_TTL_HOURS: z.coerce.number().positive().max(24 * 365 * 10).default(168),
});

export type Env = z.input<typeof EnvSchema>;

/** The parsed configuration handed to every part of the service. */
export type Config = ReturnType<typeof toConfig>;

function toConfig(env: z.output<typeof EnvSchema>) {
  const kvPath = env.KV_PATH ?? `${env.DATA_DIR.replace(/\/+$/, "")}/kv.sqlite3`;
  return {
    port: env.PORT,
    hostname: env.HOSTNAME,
    dataDir: env.DATA_DIR,
    kvPath,
    /** Remote KV (KV Connect) has no queues: the sweep alone drives work there. */
    kvIsRemote: /^https?:\/\//i.test(kvPath),
    workerConcurrency: env.WORKER_CONCURRENCY,
    perHostConcurrency: env.PER_HOST_CONCURRENCY,
    leaseMs: env.LEASE_MS,
    sweepIntervalMs: env.SWEEP_INTERVAL_MS,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    contentCacheBytes: env.CONTENT_CACHE_BYTES,
    contentCacheItemBytes: env.CONTENT_CACHE_ITEM_BYTES,
    /** `Cache-Control` of `/images/content`; short by default, since a refresh can change it. */
    contentCacheControl: env.CONTENT_CACHE_CONTROL,
    indexCacheMs: env.INDEX_CACHE_MS,
    /** Silence before a `: ping` on a job's event stream. */
    eventsHeartbeatMs: env.EVENTS_HEARTBEAT_MS,
    /** How often an event stream rereads its job (KV watch misses other processes' writes). */
    eventsPollMs: env.EVENTS_POLL_MS,
    retries: env.FETCH_RETRIES,
    retryBaseMs: env.FETCH_RETRY_BASE_MS,
    retryAfterCapMs: env.FETCH_RETRY_AFTER_CAP_MS,
    /** Signs webhooks; without it a `callback_url` is refused at submission. */
    webhookSecret: env.WEBHOOK_SECRET,
    webhookTimeoutMs: env.WEBHOOK_TIMEOUT_MS,
    webhookRetries: env.WEBHOOK_RETRIES,
    webhookRetryBaseMs: env.WEBHOOK_RETRY_BASE_MS,
    jobTtlMs: Math.round(env.JOB_TTL_HOURS * 3_600_000),
    /** Image transforms decoding at once (each uses libvips' own threads as well). */
    transformConcurrency: env.TRANSFORM_CONCURRENCY ?? Math.max(1, navigator.hardwareConcurrency),
    /**
     * Transforms waiting for a slot before requests are refused with 503. A
     * page of thumbnails asks for a few dozen at once; at about 5-15 ms per
     * web-sized image this bounds the wait to well under a second per core.
     */
    transformQueue: env.TRANSFORM_QUEUE,
    fetch: {
      maxImageBytes: env.MAX_IMAGE_BYTES,
      maxImagePixels: env.MAX_IMAGE_PIXELS,
      totalTimeoutMs: env.FETCH_TIMEOUT_MS,
      connectTimeoutMs: env.FETCH_CONNECT_TIMEOUT_MS,
      stallTimeoutMs: env.FETCH_STALL_TIMEOUT_MS,
      maxRedirects: 5,
      userAgent: env.FETCH_USER_AGENT,
      policy: {
        allowPrivateNetworks: env.ALLOW_PRIVATE_NETWORKS,
        allow: env.FETCH_ALLOW_HOSTS,
        deny: env.FETCH_DENY_HOSTS,
      },
    },
  };
}

/** Raised with one readable line per bad setting. */
export class ConfigError extends Error {}

/**
 * Parses the environment once. Empty strings count as unset so that
 * `FOO= deno task start` falls back to the default.
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k in EnvSchema.shape && v !== undefined && v !== ""),
  );
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return toConfig(parsed.data);
}

/** Settings names, for documentation and for tests that check the README. */
export const SETTING_NAMES = Object.keys(EnvSchema.shape);

import type { Config } from "../config.ts";
import { PinnedConnector } from "../net/connector.ts";
import { DnsResolver } from "../net/resolver.ts";
import type { Keys } from "../store/kv_keys.ts";
import { WebhookDeliverer } from "./deliverer.ts";
import { WebhookSigner } from "./signing.ts";

/**
 * The deliverer of the service's webhooks, or null without `WEBHOOK_SECRET`
 * (then no job can carry a `callback_url`). It has its own pinned
 * connector, under the download policy and limits.
 */
export function createWebhookDeliverer(
  config: Config,
  kv: Deno.Kv,
  keys: Keys,
): { deliverer: WebhookDeliverer; close(): void } | null {
  if (!config.webhookSecret) return null;
  const connector = new PinnedConnector({ connectTimeoutMs: config.webhookTimeoutMs });
  const deliverer = new WebhookDeliverer({
    kv,
    keys,
    policy: config.fetch.policy,
    resolver: new DnsResolver(),
    connector,
    signer: new WebhookSigner(config.webhookSecret),
    timeoutMs: config.webhookTimeoutMs,
    userAgent: config.fetch.userAgent,
    retries: config.webhookRetries,
    retryBaseMs: config.webhookRetryBaseMs,
  });
  return { deliverer, close: () => connector.close() };
}

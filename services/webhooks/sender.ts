import type { AddressPolicy } from "../net/address_policy.ts";
import type { Connector } from "../net/connector.ts";
import { vetDestination } from "../net/destination.ts";
import type { Resolver } from "../net/resolver.ts";
import type { WebhookSigner } from "./signing.ts";

/** The outcome of one delivery attempt. */
export type SendResult =
  | { ok: true; status: number }
  /** `permanent`: the address is refused by the policy; trying again would not help. */
  | { ok: false; permanent: boolean; error: string };

export interface WebhookSenderDeps {
  policy: AddressPolicy;
  resolver: Resolver;
  connector: Connector;
  signer: WebhookSigner;
  timeoutMs: number;
  userAgent: string;
}

/**
 * POSTs one signed webhook. The callback URL goes through the same checks
 * as an image download, at every attempt (DNS may have changed since the
 * job was submitted), and the request goes only to a vetted address over
 * the pinned connector. Redirects are not followed: a 3xx is a failure.
 */
export async function sendWebhook(
  deps: WebhookSenderDeps,
  message: { id: string; url: string; body: string },
): Promise<SendResult> {
  const signal = AbortSignal.timeout(deps.timeoutMs);
  let vetted;
  try {
    vetted = await vetDestination(message.url, deps.policy, deps.resolver, signal);
  } catch {
    return { ok: false, permanent: false, error: `no answer within ${deps.timeoutMs} ms` };
  }
  if (!vetted.ok) {
    return {
      ok: false,
      permanent: vetted.reason !== "unreachable",
      error: `${vetted.reason}: ${vetted.detail}`,
    };
  }
  const dest = vetted.destination;
  const headers = {
    ...await deps.signer.sign(message.id, Math.floor(Date.now() / 1000), message.body),
    "content-type": "application/json",
    "user-agent": deps.userAgent,
  };
  const errors: string[] = [];
  for (const address of dest.addresses) {
    try {
      const { response, done } = await deps.connector.request(
        dest.url,
        { address, port: dest.port },
        { method: "POST", headers, body: message.body, signal },
      );
      // The answer's body is not needed; cancelling it closes the connection.
      await response.body?.cancel().catch(() => {});
      done();
      if (response.status >= 200 && response.status <= 299) {
        return { ok: true, status: response.status };
      }
      return { ok: false, permanent: false, error: `the receiver answered ${response.status}` };
    } catch (err) {
      if (signal.aborted) {
        return { ok: false, permanent: false, error: `no answer within ${deps.timeoutMs} ms` };
      }
      errors.push(`${address}: ${(err as Error)?.message ?? err}`);
    }
  }
  return { ok: false, permanent: false, error: `cannot connect (${errors.join("; ")})` };
}

/**
 * Standard Webhooks signatures: `v1,` and the base64 HMAC-SHA256 of
 * `${id}.${timestamp}.${body}` under the shared secret. The secret is
 * taken in the specification's form, `whsec_` followed by the base64 key,
 * or as a plain string (its UTF-8 bytes are the key).
 */

const encoder = new TextEncoder();

/** The HMAC key bytes of a `WEBHOOK_SECRET`. Throws on a `whsec_` value that is not base64. */
export function secretKeyBytes(secret: string): Uint8Array {
  if (!secret.startsWith("whsec_")) return encoder.encode(secret);
  const b64 = secret.slice("whsec_".length);
  const bin = atob(b64); // throws on invalid base64
  if (bin.length === 0) throw new Error("the whsec_ secret is empty");
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export interface SignedHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/** Signs a body; `timestampSeconds` is Unix time in seconds, as the headers carry it. */
export class WebhookSigner {
  readonly #key: Promise<CryptoKey>;

  constructor(secret: string) {
    this.#key = crypto.subtle.importKey(
      "raw",
      secretKeyBytes(secret) as Uint8Array<ArrayBuffer>,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }

  async sign(id: string, timestampSeconds: number, body: string): Promise<SignedHeaders> {
    const content = encoder.encode(`${id}.${timestampSeconds}.${body}`);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await this.#key, content));
    let bin = "";
    for (const b of mac) bin += String.fromCharCode(b);
    return {
      "webhook-id": id,
      "webhook-timestamp": String(timestampSeconds),
      "webhook-signature": `v1,${btoa(bin)}`,
    };
  }
}

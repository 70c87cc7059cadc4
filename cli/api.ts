/** The service's HTTP API as the CLI uses it. Plain fetch; nothing from the service's code. */
import { ConnectionError, ServiceError } from "./errors.ts";
import type { FailedItem, JobSummary } from "./types.ts";

export class ServiceClient {
  constructor(readonly base: string, private readonly apiKey?: string) {}

  #headers(extra: Record<string, string> = {}): Headers {
    const h = new Headers(extra);
    if (this.apiKey) h.set("authorization", `Bearer ${this.apiKey}`);
    return h;
  }

  /** fetch that turns "no answer at all" into a ConnectionError naming the server. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(this.base + path, {
        ...init,
        headers: this.#headers(Object.fromEntries(new Headers(init.headers))),
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw new ConnectionError(`cannot reach ${this.base}: ${(err as Error).message}`);
    }
  }

  /** POST /images; `202` gives the job (a new one, or the original for a repeated key). */
  async submit(
    body: Uint8Array,
    type: string,
    key: string,
    refresh: boolean,
  ): Promise<JobSummary> {
    const res = await this.request(`/images${refresh ? "?refresh=true" : ""}`, {
      method: "POST",
      headers: { "content-type": type, "idempotency-key": key },
      body: body as BodyInit,
    });
    if (res.status !== 202 && res.status !== 200) throw await problem(res);
    return await res.json();
  }

  async job(id: string): Promise<JobSummary> {
    const res = await this.request(`/jobs/${encodeURIComponent(id)}`);
    if (!res.ok) throw await problem(res);
    return await res.json();
  }

  /** The first page of a job's failed items (for the summary when no event stream told them). */
  async failedItems(id: string, limit: number): Promise<FailedItem[]> {
    const res = await this.request(
      `/jobs/${encodeURIComponent(id)}/items?state=failed&limit=${limit}`,
    );
    if (!res.ok) throw await problem(res);
    const page = await res.json() as { items: FailedItem[] };
    return page.items;
  }

  /** Opens the job's event stream; the caller reads (or cancels) the body. */
  events(id: string, lastEventId: string | undefined, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
    return this.request(`/jobs/${encodeURIComponent(id)}/events`, { headers, signal });
  }

  /** Opens the results file (`csv` or `ndjson`); errors are thrown as ServiceError. */
  async results(id: string, kind: "csv" | "ndjson"): Promise<Response> {
    const res = await this.request(`/jobs/${encodeURIComponent(id)}/results.${kind}`);
    if (!res.ok) throw await problem(res);
    return res;
  }
}

/** Reads an error answer: the RFC 9457 `detail` (or `title`) when there is one. */
export async function problem(res: Response): Promise<ServiceError> {
  const text = await res.text().catch(() => "");
  let message = `the service answered ${res.status} ${res.statusText}`.trim();
  try {
    const body = JSON.parse(text);
    const parts = [body.detail ?? body.title].filter((p) => typeof p === "string");
    if (Array.isArray(body.errors)) {
      for (const e of body.errors.slice(0, 5)) {
        if (e && typeof e.message === "string") {
          parts.push(e.field ? `${e.field}: ${e.message}` : e.message);
        }
      }
    }
    if (parts.length) message = `the service answered ${res.status}: ${parts.join("; ")}`;
  } catch {
    // Not JSON (a proxy's page, say): the status line is all there is.
  }
  return new ServiceError(res.status, message);
}

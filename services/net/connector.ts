import { ConnectTunnel, type PinnedTarget } from "./connect_tunnel.ts";

export type { PinnedTarget } from "./connect_tunnel.ts";

/** A response plus the hook that says the caller is finished with its body. */
export interface PinnedResponse {
  response: Response;
  /** Call once the body is consumed or cancelled; lets the connector retire clients safely. */
  done(): void;
}

/**
 * Performs one HTTP exchange for `url` while opening sockets only to
 * `target` (the vetted address), keeping the URL's Host header and TLS name.
 * Injectable: tests supply a recording connector that cannot open sockets.
 */
export interface Connector {
  request(url: URL, target: PinnedTarget, init: RequestInit): Promise<PinnedResponse>;
  /** Closes every client and tunnel. */
  close(): void;
}

/** Tuning for {@link PinnedConnector}. */
export interface PinnedConnectorOptions {
  /** Clients kept (one per scheme, address and port) for keep-alive reuse. */
  maxClients?: number;
  /** Used by the HTTPS tunnel when dialling the origin. */
  connectTimeoutMs?: number;
  /** Extra trusted roots, for tests with a private CA. */
  caCerts?: string[];
}

interface ClientEntry {
  client: Deno.HttpClient;
  users: number;
  token: string | null;
}

/**
 * The real connector.
 *
 * - http: `Deno.createHttpClient({ proxy: { transport: "tcp", hostname, port } })`
 *   sends the request to exactly that socket. The request line is then in
 *   absolute form (`GET http://name/path HTTP/1.1`), which HTTP/1.1 servers
 *   are required to accept (RFC 9112 section 3.2.2), with the URL's Host header.
 * - https: a client whose HTTP proxy is the in-process {@link ConnectTunnel},
 *   which dials the vetted address; TLS is end to end.
 *
 * Clients are cached per scheme+address+port so connections are reused
 * (throughput matters); the cache is bounded and an evicted client is closed
 * once no request is using it.
 */
export class PinnedConnector implements Connector {
  readonly #maxClients: number;
  readonly #connectTimeoutMs: number;
  readonly #caCerts: string[] | undefined;
  readonly #clients = new Map<string, ClientEntry>();
  #tunnel: ConnectTunnel | null = null;
  #closed = false;

  constructor(options: PinnedConnectorOptions = {}) {
    this.#maxClients = options.maxClients ?? 256;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#caCerts = options.caCerts;
  }

  /** Clients currently cached (for tests). */
  get clientCount(): number {
    return this.#clients.size;
  }

  async request(url: URL, target: PinnedTarget, init: RequestInit): Promise<PinnedResponse> {
    if (this.#closed) throw new Error("connector is closed");
    const entry = this.#lease(url.protocol, target);
    try {
      const response = await fetch(url, { ...init, client: entry.client });
      let released = false;
      return {
        response,
        done: () => {
          if (released) return;
          released = true;
          this.#release(entry);
        },
      };
    } catch (err) {
      this.#release(entry);
      throw err;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#clients.values()) entry.client.close();
    this.#clients.clear();
    // The accept loop ends on its own once the listener is closed.
    this.#tunnel?.close();
    this.#tunnel = null;
  }

  #lease(protocol: string, target: PinnedTarget): ClientEntry {
    const key = `${protocol}//${target.address}|${target.port}`;
    let entry = this.#clients.get(key);
    if (entry) {
      this.#clients.delete(key); // re-insert: Map order is our LRU order
    } else {
      entry = this.#create(protocol, target);
    }
    this.#clients.set(key, entry);
    entry.users++;
    if (this.#clients.size > this.#maxClients) this.#evictOverflow();
    return entry;
  }

  #create(protocol: string, target: PinnedTarget): ClientEntry {
    if (protocol === "http:") {
      // The tcp transport needs IPv6 in brackets ("failed to parse tcp proxy uri" otherwise).
      const hostname = target.address.includes(":") ? `[${target.address}]` : target.address;
      const client = Deno.createHttpClient({
        caCerts: this.#caCerts,
        proxy: { transport: "tcp", hostname, port: target.port },
      });
      return { client, users: 0, token: null };
    }
    this.#tunnel ??= new ConnectTunnel({ connectTimeoutMs: this.#connectTimeoutMs });
    const token = this.#tunnel.register(target);
    const client = Deno.createHttpClient({
      caCerts: this.#caCerts,
      proxy: {
        url: `http://127.0.0.1:${this.#tunnel.port}`,
        basicAuth: { username: token, password: "pinned" },
      },
    });
    return { client, users: 0, token };
  }

  #evictOverflow(): void {
    for (const [key, entry] of this.#clients) {
      if (this.#clients.size <= this.#maxClients) break;
      if (entry.users > 0) continue; // closing it would cut a body mid-read
      this.#clients.delete(key);
      this.#retire(entry);
    }
  }

  #release(entry: ClientEntry): void {
    entry.users--;
    // An overflow left behind because every client was busy is settled now.
    if (this.#clients.size > this.#maxClients) this.#evictOverflow();
  }

  #retire(entry: ClientEntry): void {
    entry.client.close();
    if (entry.token) this.#tunnel?.unregister(entry.token);
  }
}

/**
 * The durable loop's storage: only the per-image work the service's disk blob store must finish
 * before an image may be indexed, with the same layout, and nothing else (no KV, no checks, no
 * worker thread):
 *
 * - stream the body into a temporary file while hashing it (SHA-256), gathering network chunks up
 *   to 256 KB per write so most images take one write;
 * - fsync the file, rename it to `blobs/<first two hex digits>/<sha256>` (256 directories);
 * - fsync that directory so the rename survives a power loss, one sync shared by every rename
 *   into it that finished before the sync started (a new directory's parent is synced once).
 *
 * `sync: false` skips both fsyncs (the `stream` diagnostic).
 */
import { createHash } from "node:crypto";

const WRITE_BYTES = 256 * 1024;

export class DurableStore {
  readonly #tmp: string;
  readonly #blobs: string;
  readonly #sync: boolean;
  /** Shard directories made so far (made, and their parent synced, once). */
  readonly #shards = new Map<string, Promise<void>>();
  /** Directory syncs not started yet: a rename finished before one starts is covered by it. */
  readonly #queuedSyncs = new Map<string, Promise<void>>();

  constructor(root: string, sync: boolean) {
    this.#tmp = `${root}/tmp`;
    this.#blobs = `${root}/blobs`;
    this.#sync = sync;
  }

  async init(): Promise<void> {
    await Deno.mkdir(this.#tmp, { recursive: true });
    await Deno.mkdir(this.#blobs, { recursive: true });
  }

  /** Stores one body durably; resolves to its size once the rename is durable. */
  async put(body: ReadableStream<Uint8Array>, id: number): Promise<number> {
    const tmp = `${this.#tmp}/${id}`;
    const file = await Deno.open(tmp, { write: true, createNew: true });
    const hash = createHash("sha256");
    let bytes = 0;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      const buf = pending.length === 1 ? pending[0] : new Uint8Array(pendingBytes);
      if (pending.length > 1) {
        let at = 0;
        for (const p of pending) {
          buf.set(p, at);
          at += p.byteLength;
        }
      }
      pending = [];
      pendingBytes = 0;
      for (let off = 0; off < buf.byteLength;) off += await file.write(buf.subarray(off));
    };
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        pending.push(chunk);
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= WRITE_BYTES) await flush();
      }
      if (pendingBytes > 0) await flush();
      if (this.#sync) await file.sync();
    } finally {
      file.close();
    }
    const sha256 = hash.digest("hex");
    const shard = `${this.#blobs}/${sha256.slice(0, 2)}`;
    await this.#shard(shard);
    await Deno.rename(tmp, `${shard}/${sha256}`);
    if (this.#sync) await this.#syncDir(shard);
    return bytes;
  }

  #shard(dir: string): Promise<void> {
    let made = this.#shards.get(dir);
    if (!made) {
      made = Deno.mkdir(dir, { recursive: true })
        .then(() => this.#sync ? this.#syncDir(this.#blobs) : undefined);
      this.#shards.set(dir, made);
    }
    return made;
  }

  #syncDir(dir: string): Promise<void> {
    const queued = this.#queuedSyncs.get(dir);
    if (queued) return queued;
    // Starts after the current turn, so renames finishing in it share this sync.
    const sync = Promise.resolve().then(async () => {
      this.#queuedSyncs.delete(dir); // renames from now on need the next sync
      const handle = await Deno.open(dir, { read: true });
      try {
        await handle.sync();
      } finally {
        handle.close();
      }
    });
    this.#queuedSyncs.set(dir, sync);
    return sync;
  }
}

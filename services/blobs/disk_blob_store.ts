import { createHash } from "node:crypto";
import type { BlobStore, ByteRange, StagedBlob } from "./blob_store.ts";

const HEX64 = /^[0-9a-f]{64}$/;
const WRITE_BUFFER_BYTES = 256 * 1024;

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/**
 * Blobs as files under `<dir>/blobs/ab/<sha256>` (256 directories: ext4
 * indexes large directories, and fewer directories keep mkdir off the write
 * path). A write streams into `<dir>/tmp/` while hashing; only `commit()`
 * fsyncs it and renames it into
 * place, so a file under its hash is always complete.
 */
export class DiskBlobStore implements BlobStore {
  readonly #blobDir: string;
  readonly #tmpDir: string;
  #ready: Promise<void> | undefined;
  /** Fan-out directories known to exist, so a commit is usually one rename. */
  readonly #dirs = new Set<string>();

  constructor(dir: string) {
    const root = dir.replace(/\/+$/, "");
    this.#blobDir = `${root}/blobs`;
    this.#tmpDir = `${root}/tmp`;
  }

  #ensureDirs(): Promise<void> {
    this.#ready ??= Promise.all([
      Deno.mkdir(this.#blobDir, { recursive: true }),
      Deno.mkdir(this.#tmpDir, { recursive: true }),
    ]).then(() => {});
    return this.#ready;
  }

  #path(sha256: string): string {
    if (!HEX64.test(sha256)) throw new TypeError(`not a sha256: ${sha256}`);
    return `${this.#blobDir}/${sha256.slice(0, 2)}/${sha256}`;
  }

  async stage(body: ReadableStream<Uint8Array>): Promise<StagedBlob> {
    await this.#ensureDirs();
    const tmpPath = `${this.#tmpDir}/${crypto.randomUUID()}`;
    const file = await Deno.open(tmpPath, { write: true, createNew: true });
    const hash = createHash("sha256");
    let bytes = 0;
    // Network chunks are small: gather them so most images take one write.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      const buf = pending.length === 1 ? pending[0] : concat(pending, pendingBytes);
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
        if (pendingBytes >= WRITE_BUFFER_BYTES) await flush();
      }
      if (pendingBytes > 0) await flush();
    } catch (err) {
      file.close();
      await Deno.remove(tmpPath).catch(() => {});
      throw err;
    }
    const sha256 = hash.digest("hex");
    const finalPath = this.#path(sha256);
    let settled = false;
    return {
      sha256,
      bytes,
      // The fsync waits for commit: the caller may check the bytes first, and
      // the download's slot is free while the disk catches up.
      commit: async () => {
        if (settled) return;
        settled = true;
        try {
          await file.sync();
        } catch (err) {
          file.close();
          await Deno.remove(tmpPath).catch(() => {});
          throw err;
        }
        file.close();
        const dir = finalPath.slice(0, finalPath.lastIndexOf("/"));
        if (!this.#dirs.has(dir)) {
          await Deno.mkdir(dir, { recursive: true });
          this.#dirs.add(dir);
        }
        // Same hash means same bytes: replacing an existing file is harmless.
        await Deno.rename(tmpPath, finalPath);
      },
      discard: async () => {
        if (settled) return;
        settled = true;
        file.close();
        await Deno.remove(tmpPath).catch(() => {});
      },
    };
  }

  async get(sha256: string, range?: ByteRange): Promise<ReadableStream<Uint8Array> | null> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#path(sha256), { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
    if (!range) return file.readable;
    await file.seek(range.start, Deno.SeekMode.Start);
    let left = range.end - range.start + 1;
    const reader = file.readable.getReader();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done || left <= 0) {
          controller.close();
          await reader.cancel().catch(() => {});
          return;
        }
        const piece = value.byteLength > left ? value.subarray(0, left) : value;
        left -= piece.byteLength;
        controller.enqueue(piece);
        if (left <= 0) {
          controller.close();
          await reader.cancel().catch(() => {});
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
  }

  async stat(sha256: string): Promise<{ bytes: number; modified: Date | null } | null> {
    try {
      const info = await Deno.stat(this.#path(sha256));
      return { bytes: info.size, modified: info.mtime };
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  }

  async delete(sha256: string): Promise<void> {
    await Deno.remove(this.#path(sha256)).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }

  async *list(): AsyncIterable<string> {
    await this.#ensureDirs();
    for await (const a of Deno.readDir(this.#blobDir)) {
      if (!a.isDirectory) continue;
      for await (const f of Deno.readDir(`${this.#blobDir}/${a.name}`)) {
        if (f.isFile && HEX64.test(f.name)) yield f.name;
      }
    }
  }

  /** Removes temporary files left by a crash; call at start-up. */
  async sweepTemporaries(olderThanMs = 60 * 60 * 1000): Promise<number> {
    await this.#ensureDirs();
    let removed = 0;
    for await (const f of Deno.readDir(this.#tmpDir)) {
      const path = `${this.#tmpDir}/${f.name}`;
      const info = await Deno.stat(path).catch(() => null);
      if (info?.mtime && Date.now() - info.mtime.getTime() > olderThanMs) {
        await Deno.remove(path).catch(() => {});
        removed++;
      }
    }
    return removed;
  }
}

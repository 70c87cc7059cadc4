import type { BlobStore, ByteRange, StagedBlob } from "./blob_store.ts";
import { createHash } from "node:crypto";
import { BlobWriter } from "./blob_writer.ts";
import { ByteBudget } from "./byte_budget.ts";

const HEX64 = /^[0-9a-f]{64}$/;
const WRITE_BUFFER_BYTES = 256 * 1024;
/** Read size for a byte range that ends before the end of the file. */
const RANGE_PIECE_BYTES = 16 * 1024;
/** Bytes read from the network and handed to the writer but not yet written. */
const UNWRITTEN_LIMIT_BYTES = 16 * 1024 * 1024;
const TMP_SHARDS = Array.from({ length: 16 }, (_, i) => i.toString(16));

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
 * The chunks as one view when they are consecutive views of one buffer (a
 * body read straight into its own buffer), else null. No chunks: empty view.
 */
function joinedView(chunks: Uint8Array[], total: number): Uint8Array | null {
  if (chunks.length === 0) return new Uint8Array(0);
  const first = chunks[0];
  let end = first.byteOffset + first.byteLength;
  for (let i = 1; i < chunks.length; i++) {
    if (chunks[i].buffer !== first.buffer || chunks[i].byteOffset !== end) return null;
    end += chunks[i].byteLength;
  }
  return new Uint8Array(first.buffer, first.byteOffset, total);
}

/**
 * Blobs as files under `<dir>/blobs/ab/<sha256>` (256 directories: ext4
 * indexes large directories, and fewer directories keep mkdir off the write
 * path). A write streams into `<dir>/tmp/` while hashing; only `commit()`
 * fsyncs it and renames it into place, so a file under its hash is always
 * complete. The file work runs on a worker thread (blob_writer_worker.ts);
 * `stage()` resolves once the body is read and hashed, and a write error
 * surfaces at `commit()`.
 */
export class DiskBlobStore implements BlobStore {
  readonly #blobDir: string;
  readonly #tmpDir: string;
  #ready: Promise<void> | undefined;
  /** File creation, writes, fsync and rename happen on this worker thread. */
  readonly #writer = new BlobWriter();
  readonly #unwritten = new ByteBudget(UNWRITTEN_LIMIT_BYTES);

  constructor(dir: string) {
    const root = dir.replace(/\/+$/, "");
    this.#blobDir = `${root}/blobs`;
    this.#tmpDir = `${root}/tmp`;
  }

  #ensureDirs(): Promise<void> {
    this.#ready ??= Promise.all([
      Deno.mkdir(this.#blobDir, { recursive: true }),
      ...TMP_SHARDS.map((d) => Deno.mkdir(`${this.#tmpDir}/${d}`, { recursive: true })),
    ]).then(() => {});
    return this.#ready;
  }

  #path(sha256: string): string {
    if (!HEX64.test(sha256)) throw new TypeError(`not a sha256: ${sha256}`);
    return `${this.#blobDir}/${sha256.slice(0, 2)}/${sha256}`;
  }

  async stage(body: AsyncIterable<Uint8Array>): Promise<StagedBlob> {
    await this.#ensureDirs();
    const writer = this.#writer;
    const id = writer.newId();
    // Creating files in one directory is serialised by the kernel: spread them.
    const path = `${this.#tmpDir}/${TMP_SHARDS[id % TMP_SHARDS.length]}/${crypto.randomUUID()}`;
    const hash = createHash("sha256");
    let bytes = 0;
    // Network chunks are small: gather them so most images take one write.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const take = () => {
      const parts = pending;
      const size = pendingBytes;
      pending = [];
      pendingBytes = 0;
      const joined = joinedView(parts, size);
      // Chunks are ours once yielded: a whole buffer is handed over as it
      // is; anything else is copied once, into a buffer that is handed over
      // (posting a view would clone its whole underlying buffer).
      const whole = joined !== null && joined.byteOffset === 0 &&
        joined.buffer instanceof ArrayBuffer && joined.byteLength === joined.buffer.byteLength;
      const chunk = whole ? joined : concat(joined ? [joined] : parts, size);
      return { chunk, transfer: [chunk.buffer as ArrayBuffer] };
    };
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        pending.push(chunk);
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= WRITE_BUFFER_BYTES) {
          // A large body waits for the disk every WRITE_BUFFER_BYTES: bounded memory.
          const { chunk: piece, transfer } = take();
          const res = await writer.ask({ op: "write", id, path, chunk: piece }, transfer);
          if (!res.ok) throw new Error(`cannot write blob: ${res.error}`);
        }
      }
      // The rest is not waited for: the download is over once its body is
      // read. Until written it counts against a shared budget, so a slow disk
      // slows the downloads down rather than filling memory.
      const { chunk: last, transfer } = take();
      const size = last.byteLength; // before the transfer detaches it
      await this.#unwritten.take(size);
      writer.ask({ op: "write", id, path, chunk: last }, transfer)
        .then(() => this.#unwritten.give(size));
    } catch (err) {
      await writer.ask({ op: "discard", id, path });
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
        const res = await writer.ask({ op: "commit", id, path, finalPath });
        if (!res.ok) throw new Error(`cannot store blob: ${res.error}`);
      },
      discard: async () => {
        if (settled) return;
        settled = true;
        await writer.ask({ op: "discard", id, path });
      },
    };
  }

  /** Stops the writer thread; call when the service shuts down. */
  close(): void {
    this.#writer.close();
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
    const size = (await file.stat()).size;
    // A range that runs to the end is the file's own stream from there:
    // straight from the file to the socket, as a whole file is.
    if (range.end >= size - 1) return file.readable;
    // Otherwise small reads: each piece passes through JS, and V8 frees
    // such buffers late (a 50 MB middle range in 64 KB pieces grew the
    // process by about 58 MiB; 16 KB pieces keep it near 17).
    let left = range.end - range.start + 1;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const piece = new Uint8Array(Math.min(left, RANGE_PIECE_BYTES));
        const n = left > 0 ? await file.read(piece) : null;
        if (n === null || n === 0) {
          controller.close();
          file.close();
          return;
        }
        left -= n;
        controller.enqueue(n === piece.byteLength ? piece : piece.subarray(0, n));
        if (left <= 0) {
          controller.close();
          file.close();
        }
      },
      cancel: () => file.close(),
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
    for await (const path of walkFiles(this.#tmpDir)) {
      const info = await Deno.stat(path).catch(() => null);
      if (info?.mtime && Date.now() - info.mtime.getTime() > olderThanMs) {
        await Deno.remove(path).catch(() => {});
        removed++;
      }
    }
    return removed;
  }
}

/** Every file under `dir`, one level of subdirectories deep at most. */
async function* walkFiles(dir: string): AsyncIterable<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isFile) yield path;
    else if (entry.isDirectory) {
      for await (const inner of Deno.readDir(path)) {
        if (inner.isFile) yield `${path}/${inner.name}`;
      }
    }
  }
}

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Runs in a Web Worker: creates, writes, fsyncs and renames blob files.
 * Creating and syncing files can block a thread for milliseconds on a busy
 * file system; here that blocks this thread, not the one serving HTTP and
 * driving downloads. Protocol: see blob_writer.ts.
 *
 * Create, write and rename are synchronous calls: this thread exists to
 * block on them, and an async call would add a hop to another thread for
 * each (about 4% of ingest throughput in `deno task bench ingest`). fsync
 * stays asynchronous so that many can wait on the disk at once: one at a
 * time halved throughput.
 */
import type { WriterReply, WriterRequest } from "./blob_writer.ts";

interface OpenFile {
  file: Promise<Deno.FsFile>;
  /** Writes of one file run in order; commit and discard queue behind them. */
  chain: Promise<unknown>;
  error: unknown;
}

const files = new Map<number, OpenFile>();
const knownDirs = new Set<string>();
const dirSyncs = new Map<string, Promise<void>>();

/**
 * fsyncs a directory, shared by every rename into it that finished before
 * the sync starts: group commit for directory entries.
 */
function syncDir(dir: string): Promise<void> {
  let pending = dirSyncs.get(dir);
  if (!pending) {
    pending = (async () => {
      await Promise.resolve(); // let renames finishing in this turn join
      dirSyncs.delete(dir); // renames after this point need the next sync
      const handle = await Deno.open(dir, { read: true });
      try {
        await handle.sync();
      } finally {
        handle.close();
      }
    })();
    dirSyncs.set(dir, pending);
  }
  return pending;
}

/**
 * Frees a written chunk's memory now rather than at the next garbage
 * collection: detaching a buffer drops its backing store at once, while
 * V8 lets tens of MB of dead buffers pile up between collections. Measured
 * with `deno task bench rss`.
 */
function release(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (buffer instanceof ArrayBuffer && !buffer.detached) buffer.transfer(0);
}

function reply(msg: WriterReply) {
  self.postMessage(msg);
}

/** Answers a request that asked for an answer (has a tag). */
function answer(tag: number | undefined, err?: unknown) {
  if (tag === undefined) return;
  if (err === undefined || err === null) return reply({ tag, ok: true });
  reply({ tag, ok: false, error: err instanceof Error ? err.message : String(err) });
}

/**
 * Creates a temporary file. Its directory is made again if it has gone
 * (a tmp cleaner, an operator), so one lost directory does not fail every
 * download until a restart.
 */
function createFile(path: string): Deno.FsFile {
  const options = { write: true, createNew: true };
  try {
    return Deno.openSync(path, options);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    return Deno.openSync(path, options);
  }
}

function opened(id: number, path: string): OpenFile {
  let entry = files.get(id);
  if (!entry) {
    let file: Promise<Deno.FsFile>;
    try {
      file = Promise.resolve(createFile(path));
    } catch (err) {
      file = Promise.reject(err);
    }
    entry = { file, chain: file, error: null };
    const e = entry;
    file.catch((err) => e.error ??= err);
    files.set(id, entry);
  }
  return entry;
}

async function commit(entry: OpenFile, path: string, finalPath: string): Promise<void> {
  await entry.chain;
  if (entry.error) throw entry.error;
  const file = await entry.file;
  try {
    await file.sync();
  } finally {
    file.close();
  }
  const dir = finalPath.slice(0, finalPath.lastIndexOf("/"));
  if (!knownDirs.has(dir)) {
    await Deno.mkdir(dir, { recursive: true });
    await syncDir(dir.slice(0, dir.lastIndexOf("/")));
    knownDirs.add(dir);
  }
  // Same hash means same bytes: replacing an existing file is harmless.
  Deno.renameSync(path, finalPath);
  // The rename itself is durable only once its directory is synced.
  await syncDir(dir);
}

self.onmessage = (event: MessageEvent<WriterRequest>) => {
  const msg = event.data;
  switch (msg.op) {
    case "write": {
      const entry = opened(msg.id, msg.path);
      entry.chain = entry.chain.then(async () => {
        if (entry.error) return;
        const file = await entry.file;
        for (let off = 0; off < msg.chunk.byteLength;) {
          off += file.writeSync(msg.chunk.subarray(off));
        }
      }).catch((err) => entry.error ??= err).finally(() => release(msg.chunk));
      if (msg.tag !== undefined) entry.chain.then(() => answer(msg.tag, entry.error));
      return;
    }
    case "commit": {
      const entry = files.get(msg.id);
      files.delete(msg.id);
      if (!entry) return answer(msg.tag, new Error("nothing was written"));
      commit(entry, msg.path, msg.finalPath).then(() => answer(msg.tag), async (err) => {
        await entry.file.then((f) => f.close(), () => {}).catch(() => {});
        await Deno.remove(msg.path).catch(() => {});
        answer(msg.tag, err);
      });
      return;
    }
    case "discard": {
      const entry = files.get(msg.id);
      files.delete(msg.id);
      (async () => {
        if (entry) {
          await entry.chain;
          const file = await entry.file.catch(() => null);
          file?.close();
        }
        await Deno.remove(msg.path).catch(() => {});
      })().finally(() => answer(msg.tag));
      return;
    }
  }
};

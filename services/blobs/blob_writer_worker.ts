/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Runs in a Web Worker: creates, writes, hashes, fsyncs and renames blob
 * files. Creating and syncing files can block a thread for milliseconds on
 * a busy file system; here that blocks this thread, not the one serving HTTP
 * and driving downloads. Protocol: see blob_writer.ts.
 */
import { createHash, type Hash } from "node:crypto";
import type { WriterReply, WriterRequest } from "./blob_writer.ts";

interface OpenFile {
  file: Promise<Deno.FsFile>;
  hash: Hash;
  bytes: number;
  /** Writes of one file run in order. */
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

function reply(msg: WriterReply) {
  self.postMessage(msg);
}

function fail(id: number, err: unknown) {
  reply({ id, ok: false, error: err instanceof Error ? err.message : String(err) });
}

self.onmessage = (event: MessageEvent<WriterRequest>) => {
  const msg = event.data;
  switch (msg.op) {
    case "open": {
      const file = Deno.open(msg.path, { write: true, createNew: true });
      const entry: OpenFile = {
        file,
        hash: createHash("sha256"),
        bytes: 0,
        chain: file,
        error: null,
      };
      file.catch((err) => entry.error ??= err);
      files.set(msg.id, entry);
      return;
    }
    case "write": {
      const entry = files.get(msg.id)!;
      entry.hash.update(msg.chunk);
      entry.bytes += msg.chunk.byteLength;
      entry.chain = entry.chain.then(async () => {
        if (entry.error) return;
        const file = await entry.file;
        for (let off = 0; off < msg.chunk.byteLength;) {
          off += await file.write(msg.chunk.subarray(off));
        }
      }).catch((err) => entry.error ??= err);
      if (msg.ack) entry.chain.then(() => reply({ id: msg.id, ok: true }));
      return;
    }
    case "finish": {
      const entry = files.get(msg.id)!;
      entry.chain.then(() => {
        if (entry.error) return fail(msg.id, entry.error);
        reply({ id: msg.id, ok: true, sha256: entry.hash.digest("hex"), bytes: entry.bytes });
      });
      return;
    }
    case "commit": {
      const entry = files.get(msg.id)!;
      files.delete(msg.id);
      (async () => {
        const file = await entry.file;
        try {
          await file.sync();
        } finally {
          file.close();
        }
        const dir = msg.finalPath.slice(0, msg.finalPath.lastIndexOf("/"));
        if (!knownDirs.has(dir)) {
          await Deno.mkdir(dir, { recursive: true });
          await syncDir(dir.slice(0, dir.lastIndexOf("/")));
          knownDirs.add(dir);
        }
        // Same hash means same bytes: replacing an existing file is harmless.
        await Deno.rename(msg.path, msg.finalPath);
        // The rename itself is durable only once its directory is synced.
        await syncDir(dir);
      })().then(() => reply({ id: msg.id, ok: true }), async (err) => {
        await Deno.remove(msg.path).catch(() => {});
        fail(msg.id, err);
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
      })().finally(() => reply({ id: msg.id, ok: true }));
      return;
    }
  }
};

/**
 * Messages between the blob store and its writer worker (blob_writer_worker.ts).
 * `id` names a file: its first `write` creates it, its writes are applied
 * in order, and `commit`/`discard` wait for them. A request with a `tag`
 * is answered with that tag once done (a write: once it and every earlier
 * write of that file are written).
 */
export type WriterRequest =
  | { op: "write"; id: number; path: string; chunk: Uint8Array; tag?: number }
  | { op: "commit"; id: number; path: string; finalPath: string; tag?: number }
  | { op: "discard"; id: number; path: string; tag?: number };

export type WriterReply =
  | { tag: number; ok: true }
  | { tag: number; ok: false; error: string };

/**
 * The blob store's side of the writer worker: numbered requests, replies
 * matched by number. One worker thread: in `deno task bench ingest` it took
 * ingest from about 900 to 1,030 images/s, while two or four threads did
 * worse (each isolate costs CPU on this 2-core machine). Started on first
 * use, so tools that only read blobs (fsck) never start a thread.
 */
export class BlobWriter {
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #waiting = new Map<number, (reply: WriterReply) => void>();

  newId(): number {
    return this.#nextId++;
  }

  /** Sends without waiting for an answer (the worker keeps the order). */
  send(msg: WriterRequest, transfer: Transferable[] = []): void {
    this.#start().postMessage(msg, transfer);
  }

  /** Sends with a fresh tag and resolves with the reply to it. */
  ask(msg: WriterRequest, transfer: Transferable[] = []): Promise<WriterReply> {
    const tag = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(tag, resolve);
      this.send({ ...msg, tag }, transfer);
    });
  }

  close(): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#failWaiting("blob writer closed");
  }

  #failWaiting(error: string): void {
    for (const [tag, resolve] of this.#waiting) resolve({ tag, ok: false, error });
    this.#waiting.clear();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("./blob_writer_worker.ts", import.meta.url).href, {
      type: "module",
    });
    worker.onmessage = (event: MessageEvent<WriterReply>) => {
      const resolve = this.#waiting.get(event.data.tag);
      if (!resolve) return;
      this.#waiting.delete(event.data.tag);
      resolve(event.data);
    };
    worker.onerror = (event) => {
      // A dead writer must not leave downloads waiting forever: fail what it
      // held (those items are retried) and start a fresh one on next use.
      event.preventDefault();
      console.error(`blob writer: ${event.message}`);
      worker.terminate();
      if (this.#worker === worker) this.#worker = null;
      this.#failWaiting("blob writer thread failed");
    };
    this.#worker = worker;
    return worker;
  }
}

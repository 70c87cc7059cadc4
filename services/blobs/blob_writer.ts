/** Messages between the blob store and its writer worker (blob_writer_worker.ts). */
export type WriterRequest =
  | { op: "open"; id: number; path: string }
  | { op: "write"; id: number; chunk: Uint8Array; ack: boolean }
  | { op: "finish"; id: number }
  | { op: "commit"; id: number; path: string; finalPath: string }
  | { op: "discard"; id: number; path: string };

export type WriterReply =
  | { id: number; ok: true; sha256?: string; bytes?: number }
  | { id: number; ok: false; error: string };

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

  /** Sends and waits for the reply to this request's id. */
  ask(msg: WriterRequest, transfer: Transferable[] = []): Promise<WriterReply> {
    return new Promise((resolve) => {
      this.#waiting.set(msg.id, resolve);
      this.send(msg, transfer);
    });
  }

  close(): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#failWaiting("blob writer closed");
  }

  #failWaiting(error: string): void {
    for (const [id, resolve] of this.#waiting) resolve({ id, ok: false, error });
    this.#waiting.clear();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("./blob_writer_worker.ts", import.meta.url).href, {
      type: "module",
    });
    worker.onmessage = (event: MessageEvent<WriterReply>) => {
      const resolve = this.#waiting.get(event.data.id);
      if (!resolve) return;
      this.#waiting.delete(event.data.id);
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

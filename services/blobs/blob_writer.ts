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
 * The blob store's side of the writer workers: numbered requests, replies
 * matched by number; all requests about one file go to the same worker.
 * One worker by default: in `deno task bench ingest` one took ingest from
 * about 900 to 1,030 images/s, while two or four did worse (each isolate
 * costs CPU on this 2-core machine). Started on first use, so tools that
 * only read blobs (fsck) never start a thread.
 */
export class BlobWriter {
  #workers: Worker[] = [];
  #nextId = 1;
  readonly #waiting = new Map<number, (reply: WriterReply) => void>();

  constructor(private readonly threads = 1) {}

  newId(): number {
    return this.#nextId++;
  }

  /** Sends without waiting for an answer (the worker keeps the order). */
  send(msg: WriterRequest, transfer: Transferable[] = []): void {
    this.#start(msg.id % this.threads).postMessage(msg, transfer);
  }

  /** Sends and waits for the reply to this request's id. */
  ask(msg: WriterRequest, transfer: Transferable[] = []): Promise<WriterReply> {
    return new Promise((resolve) => {
      this.#waiting.set(msg.id, resolve);
      this.send(msg, transfer);
    });
  }

  close(): void {
    for (const worker of this.#workers) worker?.terminate();
    this.#workers = [];
    for (const resolve of this.#waiting.values()) {
      resolve({ id: 0, ok: false, error: "blob writer closed" });
    }
    this.#waiting.clear();
  }

  #start(slot: number): Worker {
    if (this.#workers[slot]) return this.#workers[slot];
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
      event.preventDefault();
      console.error(`blob writer: ${event.message}`);
    };
    this.#workers[slot] = worker;
    return worker;
  }
}

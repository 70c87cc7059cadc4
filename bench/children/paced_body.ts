/**
 * A response body sent no faster than a given rate: the bytes go out in 16 KB slices, each
 * released by a timer when the rate allows it, like a slow link would deliver them.
 */

const SLICE_BYTES = 16 * 1024;

/** The source re-cut into slices of at most SLICE_BYTES. */
async function* slices(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    for (let at = 0; at < chunk.byteLength; at += SLICE_BYTES) {
      yield chunk.subarray(at, at + SLICE_BYTES);
    }
  }
}

export function pacedBody(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  bytesPerSec: number,
): ReadableStream<Uint8Array> {
  const it = slices(source);
  const sliceMs = (SLICE_BYTES / bytesPerSec) * 1000;
  /** When the next slice may leave; the first leaves at once (a link's first packets do). */
  let due = performance.now();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await it.next();
      if (done) return controller.close();
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Timers fire late by a millisecond or so: the schedule stays absolute so that lateness
      // does not add up, but a reader that stalled for longer than a slice gets no burst later
      // (a slow link does not save up unused capacity).
      due = Math.max(due, performance.now() - sliceMs) + (value.byteLength / bytesPerSec) * 1000;
      controller.enqueue(value);
    },
    async cancel() {
      await it.return(undefined);
    },
  }, { highWaterMark: 0 });
}

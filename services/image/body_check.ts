/**
 * The checks every incoming image body passes while it streams, whether it
 * was downloaded or uploaded: at most maxImageBytes, a recognised raster
 * format (by its bytes only), and a header-declared pixel count within
 * maxImagePixels. Each caller says how a refusal is thrown, so a download
 * fails its attempt and an upload answers the client.
 */
import { sniffImage } from "./sniff.ts";
import type { ImageInfo } from "./types.ts";

/** How much of the start of a body is kept for identifying the image. */
export const SNIFF_LIMIT_BYTES = 1024 * 1024;

/** Why a body is refused. */
export type CheckReason = "too_large" | "not_an_image" | "unsupported_format" | "too_many_pixels";

export interface ImageLimits {
  maxImageBytes: number;
  maxImagePixels: number;
}

/** Builds the error to throw for a refused body. */
export type Refuse = (reason: CheckReason, detail: string) => Error;

/** Feed it every chunk in order, then `finish()`; it throws as soon as a check fails. */
export class ImageBodyCheck {
  #total = 0;
  readonly #limits: ImageLimits;
  readonly #refuse: Refuse;
  readonly #sizeNote: string;
  readonly #sniffer: HeadSniffer;

  /** `sizeNote` qualifies the size refusal (e.g. " once decoded"). */
  constructor(limits: ImageLimits, refuse: Refuse, sizeNote = "") {
    this.#limits = limits;
    this.#refuse = refuse;
    this.#sizeNote = sizeNote;
    this.#sniffer = new HeadSniffer(limits, refuse);
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#total;
  }

  /** What image it is, once the header has been read and accepted. */
  get info(): ImageInfo | null {
    return this.#sniffer.info;
  }

  add(chunk: Uint8Array): void {
    this.#total += chunk.length;
    if (this.#total > this.#limits.maxImageBytes) {
      throw this.#refuse(
        "too_large",
        `body exceeds ${this.#limits.maxImageBytes} bytes${this.#sizeNote}`,
      );
    }
    this.#sniffer.add(chunk);
  }

  /** The body ended: decide with what there is. */
  finish(): ImageInfo {
    if (this.#total === 0) throw this.#refuse("not_an_image", "the body is empty");
    return this.#sniffer.finish();
  }
}

/** Collects the start of the body until sniffImage can decide what it is. */
class HeadSniffer {
  info: ImageInfo | null = null;
  #head = new Uint8Array(0);
  #length = 0;
  readonly #limits: ImageLimits;
  readonly #refuse: Refuse;

  constructor(limits: ImageLimits, refuse: Refuse) {
    this.#limits = limits;
    this.#refuse = refuse;
  }

  add(chunk: Uint8Array): void {
    if (this.info) return;
    const first = this.#length === 0;
    if (first) {
      // Usually the first chunk settles it: judge it in place, no copy.
      const head = chunk.subarray(0, SNIFF_LIMIT_BYTES);
      if (this.#judge(head, head.length >= SNIFF_LIMIT_BYTES)) return;
    }
    const part = chunk.subarray(0, SNIFF_LIMIT_BYTES - this.#length);
    if (this.#length + part.length > this.#head.length) {
      // Grow by doubling so a body dripped a byte at a time stays linear.
      const grown = new Uint8Array(
        Math.min(SNIFF_LIMIT_BYTES, Math.max(4096, (this.#length + part.length) * 2)),
      );
      grown.set(this.#head.subarray(0, this.#length));
      this.#head = grown;
    }
    this.#head.set(part, this.#length);
    this.#length += part.length;
    // The first chunk was already judged as it stands. At the limit, stop
    // waiting: the header had its chance.
    if (!first) {
      this.#judge(this.#head.subarray(0, this.#length), this.#length >= SNIFF_LIMIT_BYTES);
    }
  }

  finish(): ImageInfo {
    if (!this.info) this.#judge(this.#head.subarray(0, this.#length), true);
    return this.info!;
  }

  /** True once decided (accepted); throws when refused; false to wait for more. */
  #judge(head: Uint8Array, isComplete: boolean): boolean {
    const result = sniffImage(head, isComplete);
    if (result.kind === "need_more") {
      if (isComplete) throw this.#refuse("not_an_image", "no image header found");
      return false;
    }
    if (result.kind === "rejected") throw this.#refuse(result.reason, result.detail);
    const { width, height } = result.info;
    const pixels = width * height;
    if (pixels > this.#limits.maxImagePixels) {
      throw this.#refuse(
        "too_many_pixels",
        `${width}x${height} = ${pixels} pixels exceeds ${this.#limits.maxImagePixels}`,
      );
    }
    this.info = result.info;
    this.#head = new Uint8Array(0); // no longer needed
    return true;
  }
}

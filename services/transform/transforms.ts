/**
 * The transform service: parameters in, a derivative out, cached in the
 * blob store under the source's hash and the parameters' key. Lookups are
 * remembered in memory (a derivative never changes for a given source and
 * key), identical work in flight is done once, and the pool bounds how many
 * decodes run at once. Free of HTTP.
 */
import type { BlobStore, ByteRange } from "../blobs/blob_store.ts";
import type { ImageBody, ImageContent } from "../image_content.ts";
import type { ImageFormat } from "../image/types.ts";
import type { DerivativesRepo } from "../store/derivatives_repo.ts";
import type { DerivativeRecord } from "../store/records.ts";
import { runTransform } from "./engine.ts";
import { TransformError } from "./errors.ts";
import { paramsKey, type TransformParams } from "./params.ts";
import { TransformPool } from "./pool.ts";
import type { SharpLoader } from "./sharp_loader.ts";
import { SingleFlight } from "./single_flight.ts";
import { ensureVariants, type VariantResult, type VariantSpec } from "./variants.ts";

/** The part of the derivatives index used here. */
export type DerivativeIndex = Pick<DerivativesRepo, "get" | "put">;

/** An image to transform: a stored image's record, or any blob identified the same way. */
export interface TransformSource {
  sha256: string;
  bytes: number;
  format: ImageFormat;
  contentType: string;
  width: number;
  height: number;
  /** Named parameter sets asked for when the image was submitted. */
  variants?: VariantSpec[];
}

/** A derivative's record; `bytes` too when it was made by this call. */
export interface Derivative {
  record: DerivativeRecord;
  fresh?: Uint8Array;
}

export interface TransformsOptions {
  sharp: SharpLoader;
  blobs: BlobStore;
  content: ImageContent;
  derivatives: DerivativeIndex;
  concurrency: number;
  queueLimit: number;
  /** Decoding limit (sharp's limitInputPixels) and output limit, as for downloads. */
  maxPixels: number;
}

/** Lookups remembered; a forgotten one costs a KV read. */
const KNOWN_MAX = 10_000;

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

export class Transforms {
  /** For tests and diagnostics. */
  readonly stats = { computed: 0, cacheHits: 0, joined: 0 };
  readonly pool: TransformPool;
  readonly maxPixels: number;
  readonly #known = new Map<string, DerivativeRecord>();
  readonly #flights = new SingleFlight<Derivative>();

  constructor(private readonly opts: TransformsOptions) {
    this.pool = new TransformPool(opts.concurrency, opts.queueLimit);
    this.maxPixels = opts.maxPixels;
  }

  /** The derivative of `source` for `params`: found (memory, then the index) or made. */
  async derive(source: TransformSource, params: TransformParams): Promise<Derivative> {
    const key = paramsKey(params);
    const slot = `${source.sha256}/${key}`;
    const known = this.#known.get(slot);
    if (known) {
      this.stats.cacheHits++;
      return { record: known };
    }
    const { result, joined } = this.#flights.do(slot, async () => {
      const stored = await this.opts.derivatives.get(source.sha256, key);
      if (stored) {
        this.stats.cacheHits++;
        this.#remember(slot, stored);
        return { record: stored };
      }
      return await this.#make(source, params, key, slot);
    });
    if (joined) this.stats.joined++;
    return await result;
  }

  /**
   * The bytes of a derivative. Ones that vanished from storage since they
   * were recorded (collected with their source) are made again.
   */
  async open(
    source: TransformSource,
    params: TransformParams,
    d: Derivative,
    range?: ByteRange,
  ): Promise<ImageBody> {
    const part = (whole: Uint8Array) => range ? whole.subarray(range.start, range.end + 1) : whole;
    if (d.fresh) return part(d.fresh);
    const body = await this.opts.content.open(d.record, range);
    if (body) return body;
    const key = paramsKey(params);
    const slot = `${source.sha256}/${key}`;
    this.#known.delete(slot);
    return part((await this.#make(source, params, key, slot)).fresh!);
  }

  /** Makes (or finds) each named variant of a source; see variants.ts. */
  ensureVariants(source: TransformSource, specs: VariantSpec[]): Promise<VariantResult[]> {
    return ensureVariants(this, source, specs);
  }

  async #make(
    source: TransformSource,
    params: TransformParams,
    key: string,
    slot: string,
  ): Promise<Derivative> {
    const sharp = await this.opts.sharp.get();
    const out = await this.pool.run(async () => {
      const input = await this.#sourceBytes(source);
      return await runTransform(sharp, input, source.format, params, this.maxPixels);
    });
    this.stats.computed++;
    // The store takes ownership of staged chunks (it may move them to its
    // writer thread): stage a copy and answer with the original.
    const staged = await this.opts.blobs.stage(once(out.bytes.slice()));
    await staged.commit();
    const record: DerivativeRecord = {
      sha256: staged.sha256,
      bytes: staged.bytes,
      format: out.format,
      contentType: out.contentType,
      width: out.width,
      height: out.height,
    };
    if (await this.opts.derivatives.put(source.sha256, key, record)) {
      // Another instance may have recorded different bytes first (another
      // encoder build); those are kept and these collected, so remember them.
      this.#remember(slot, (await this.opts.derivatives.get(source.sha256, key)) ?? record);
    }
    return { record, fresh: out.bytes };
  }

  async #sourceBytes(source: TransformSource): Promise<Uint8Array> {
    const body = await this.opts.content.open(source);
    if (!body) {
      throw new TransformError(
        "missing",
        "The stored bytes of this image are missing; run `deno task fsck`.",
      );
    }
    return body instanceof Uint8Array
      ? body
      : new Uint8Array(await new Response(body).arrayBuffer());
  }

  #remember(slot: string, record: DerivativeRecord): void {
    this.#known.set(slot, record);
    if (this.#known.size > KNOWN_MAX) this.#known.delete(this.#known.keys().next().value!);
  }
}

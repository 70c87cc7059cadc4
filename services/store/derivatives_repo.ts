import type { BlobStore } from "../blobs/blob_store.ts";
import { BlobGone, type BlobRefs } from "./blob_refs.ts";
import type { CollectionMark, DerivativeRecord } from "./records.ts";

export type { DerivativeRecord } from "./records.ts";

/**
 * Cached transforms: `[source sha256, normalised parameters] -> derivative`.
 * A derivative's bytes are an ordinary blob that its entry refers to (one
 * reference), and the entry lives as long as its source: the collector
 * drops the entries of a source it deletes. Shared by every namespace,
 * like the bytes themselves.
 */
export class DerivativesRepo {
  constructor(
    private readonly kv: Deno.Kv,
    private readonly refs: BlobRefs,
    private readonly blobs: Pick<BlobStore, "stat">,
  ) {}

  async get(sourceSha: string, paramsKey: string): Promise<DerivativeRecord | null> {
    return (await this.kv.get<DerivativeRecord>(this.refs.keys.derivative(sourceSha, paramsKey)))
      .value;
  }

  /**
   * Records a derivative whose bytes are durable (after `staged.commit()`)
   * and references them. False when the source is no longer referenced or
   * the bytes were collected meanwhile: nothing is recorded, and bytes
   * that nothing refers to are queued for collection. A derivative equal
   * to its source is not recorded (the source serves it).
   */
  async put(sourceSha: string, paramsKey: string, record: DerivativeRecord): Promise<boolean> {
    if (record.sha256 === sourceSha) return true;
    const k = this.refs.keys;
    for (;;) {
      const [entry, sourceCount, sourceMark] = await this.kv.getMany<
        [DerivativeRecord, Deno.KvU64, CollectionMark]
      >([k.derivative(sourceSha, paramsKey), k.refs(sourceSha), k.mark(sourceSha)]);
      if (entry.value) {
        // Another request recorded it first; different bytes (an encoder
        // change) keep the first, and these go unless shared.
        if (entry.value.sha256 !== record.sha256) {
          await this.refs.requestCollection(record.sha256);
        }
        return true;
      }
      // Referenced means not being collected: a collection needs a count of 0.
      if ((sourceCount.value?.value ?? 0n) === 0n) {
        await this.refs.requestCollection(record.sha256);
        return false;
      }
      let token;
      try {
        token = await this.refs.prepareAdd(
          record.sha256,
          async () => (await this.blobs.stat(record.sha256)) !== null,
        );
      } catch (err) {
        if (err instanceof BlobGone) return false;
        throw err;
      }
      const op = this.kv.atomic().check(entry, sourceCount, sourceMark)
        .set(entry.key, record);
      this.refs.addRef(op, token);
      if ((await op.commit()).ok) return true;
    }
  }
}

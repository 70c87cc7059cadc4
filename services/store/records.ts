import type { OriginCaching } from "../fetch/caching.ts";
import type { FailureReason } from "../fetch/reasons.ts";
import type { ImageFormat } from "../image/types.ts";
import type { VariantSpec } from "../transform/variants.ts";

export type { VariantSpec };

/** A submitted batch. Counts live in separate counter keys so workers never contend on this record. */
export interface JobRecord {
  id: string;
  /** Epoch milliseconds. */
  created: number;
  total: number;
  refresh: boolean;
  /** Set when the first URL of the job is claimed. */
  started: number | null;
  finished: number | null;
  /** The body's format; absent on jobs recorded before it existed. */
  source?: "json" | "text" | "csv";
  /** The CSV header row as sent, when the CSV had one (for the results file). */
  csvHeader?: string[];
  /** Where the job's summary is POSTed when it ends (validated at submission). */
  callbackUrl?: string;
  /** Epoch milliseconds the job was cancelled. */
  cancelled?: number;
  /** Epoch milliseconds after which the job and its items may be deleted. */
  expiresAt?: number;
  /** Epoch milliseconds of the last `POST /jobs/{id}/retry`: earlier URL failures no longer settle items. */
  retried?: number;
  /** Set while a retry moves failed items back to pending; the worker finishes the move after a crash. */
  retrying?: true;
  /** Variants to compute for every image of the job (JSON submissions). */
  variants?: VariantSpec[];
}

/** `fetching` is `pending` with a lease: the API shows both as pending. */
export type ItemState = "pending" | "fetching" | "complete" | "failed";

/** One URL of one job. */
export interface ItemRecord {
  url: string;
  urlHash: string;
  state: ItemState;
  /** Download attempts made so far (0 when the URL was already stored). */
  attempts: number;
  reason?: FailureReason;
  detail?: string;
  leaseOwner?: string;
  leaseUntil?: number;
  /** A retry or a wait for another job's download of the same URL: not before this time. */
  notBefore?: number;
  finishedAt?: number;
  /** Complete because the origin answered 304 to a refresh: the stored image was kept. */
  revalidated?: true;
  /** 1-based line of the URL in a text or CSV body. */
  line?: number;
  /** The CSV row's fields as sent (CSV bodies only). */
  columns?: string[];
}

/** The index entry of a stored image, keyed by the hash of its URL. */
export interface ImageRecord {
  url: string;
  sha256: string;
  bytes: number;
  format: ImageFormat;
  contentType: string;
  width: number;
  height: number;
  /** Epoch milliseconds of the latest successful download (a 200). */
  storedAt: number;
  /**
   * Epoch milliseconds the origin last vouched for the bytes: a download or
   * a 304 to a refresh. Absent in records written before it existed
   * (read as `storedAt`).
   */
  checkedAt?: number;
  /** The origin's validators and freshness headers (bounded; see caching.ts). */
  caching?: OriginCaching;
  /** ULID of the first time this URL was stored: its place in listings. */
  seq: string;
  /** The job whose download stored these bytes (absent for uploads and older records). */
  jobId?: string;
  /** How the bytes arrived; absent in records written before it existed (downloads). */
  origin?: "download" | "upload";
  /** The variants jobs asked for, by name (a later job's spec of the same name replaces it). */
  variants?: VariantSpec[];
}

/** Held by the one worker downloading a URL, so two jobs naming it download it once. */
export interface UrlLease {
  owner: string;
  until: number;
}

/** The last failed download of a URL, so jobs waiting on it fail the same way. */
export interface UrlFailure {
  reason: FailureReason;
  detail: string;
  at: number;
  attempts: number;
}

/**
 * A line of a text/CSV body that named a URL already listed earlier in the
 * same body: it has no item of its own (repeats count once), but the
 * results file shows it, in its place, with the outcome of item `index`.
 */
export interface RepeatRecord {
  index: number;
  /** The CSV row's fields, as sent (CSV bodies only). */
  columns?: string[];
}

/**
 * Where the collection of a blob stands, once its reference count has
 * fallen to zero. Writers that add a reference check this entry, so a
 * collection and a new reference to the same bytes never both succeed.
 */
export type CollectionMark =
  /** Unreferenced; waiting for the collector (or for a new reference). */
  | { state: "pending"; since: number }
  /** A collector is deleting the bytes and their derivatives, until `until` (a lease). */
  | { state: "collecting"; until: number; owner: string }
  /** The bytes were deleted at `at` (kept a day, so a late writer can tell). */
  | { state: "collected"; at: number };

/** A cached transform of a stored blob: an ordinary blob, referenced by this entry. */
export interface DerivativeRecord {
  sha256: string;
  bytes: number;
  format: ImageFormat;
  contentType: string;
  width: number;
  height: number;
}

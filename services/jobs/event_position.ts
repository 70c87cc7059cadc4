/**
 * Where a client is in a job's event stream, carried whole in every event's
 * `id`, so a reconnection with `Last-Event-ID` resumes exactly there:
 *
 * - Failed events go out in the order of the commits that failed their
 *   items (KV versionstamps, then item index within one commit). `stamp`
 *   and `index` name the last one sent; everything before it in that order
 *   was sent, nothing after it.
 * - `status`, `complete` and `failed` are the counts of the last progress
 *   event: a resume sends progress again only when they have changed.
 * - `ended`: the end event was sent.
 */
export interface EventPosition {
  /** Versionstamp of the last failed event's commit; "" before any. */
  stamp: string;
  /** Item index of the last failed event; -1 before any. */
  index: number;
  /** The last progress sent as `status/complete/failed`; "" before any. */
  progress: string;
  ended: boolean;
}

export const START: EventPosition = { stamp: "", index: -1, progress: "", ended: false };

const STATUS_CODES: Record<string, string> = {
  pending: "p",
  "in-progress": "i",
  complete: "c",
  cancelled: "x",
};
const STATUS_NAMES = Object.fromEntries(Object.entries(STATUS_CODES).map(([k, v]) => [v, k]));

/** The progress key compared between events: status and counts. */
export const progressKey = (status: string, complete: number, failed: number): string =>
  `${status}/${complete}/${failed}`;

/** `<stamp|0>.<index>.<status letter>.<complete>.<failed>[.end]` */
export function encodePosition(p: EventPosition): string {
  const [status = "pending", complete = "0", failed = "0"] = p.progress
    ? p.progress.split("/")
    : [];
  const parts = [
    p.stamp || "0",
    String(p.index),
    p.progress ? STATUS_CODES[status] : "-",
    complete,
    failed,
  ];
  if (p.ended) parts.push("end");
  return parts.join(".");
}

const ID = /^(0|[0-9a-f]{20})\.(-1|\d{1,9})\.([picx-])\.(\d{1,9})\.(\d{1,9})(\.end)?$/;

/** Reads a `Last-Event-ID`; null when it is not an id this service sent. */
export function decodePosition(id: string): EventPosition | null {
  const m = ID.exec(id);
  if (!m) return null;
  const [, stamp, index, code, complete, failed, end] = m;
  if ((stamp === "0") !== (index === "-1")) return null;
  return {
    stamp: stamp === "0" ? "" : stamp,
    index: Number(index),
    progress: code === "-" ? "" : progressKey(STATUS_NAMES[code], Number(complete), Number(failed)),
    ended: end !== undefined,
  };
}

/** True when failed mark (stamp, index) comes after the position's last failed event. */
export function isAfter(p: EventPosition, stamp: string, index: number): boolean {
  return stamp > p.stamp || (stamp === p.stamp && index > p.index);
}

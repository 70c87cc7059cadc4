/**
 * HTTP-dates (RFC 9110 5.6.7), to second precision. Written as IMF-fixdate;
 * read in all three forms a recipient must accept. Anything else is not a
 * date, which for `If-Modified-Since` and `If-Range` means "ignore it"; so
 * the reader is strict rather than `Date.parse`, which takes many other
 * shapes and reads asctime's zone-less form as local time.
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTH = MONTHS.join("|");
const TIME = String.raw`(\d\d):(\d\d):(\d\d)`;

const IMF_FIXDATE = new RegExp(
  String.raw`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (${MONTH}) (\d{4}) ${TIME} GMT$`,
);
const RFC850_DATE = new RegExp(
  String
    .raw`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d\d)-(${MONTH})-(\d\d) ${TIME} GMT$`,
);
const ASCTIME_DATE = new RegExp(
  String.raw`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (${MONTH}) ([ \d]\d) ${TIME} (\d{4})$`,
);

/** `Thu, 03 Dec 2026 20:58:24 GMT` for an epoch time in milliseconds. */
export const httpDate = (ms: number): string => new Date(ms).toUTCString();

/** Whole seconds since the epoch, as HTTP-dates compare. */
export const epochSeconds = (ms: number): number => Math.floor(ms / 1000);

/** Seconds since the epoch of an HTTP-date, or null when `value` is not exactly one. */
export function parseHttpDate(value: string): number | null {
  let m = IMF_FIXDATE.exec(value);
  if (m) return utcSeconds(+m[3], m[2], +m[1], +m[4], +m[5], +m[6]);
  m = RFC850_DATE.exec(value);
  if (m) return utcSeconds(fullYear(+m[3]), m[2], +m[1], +m[4], +m[5], +m[6]);
  m = ASCTIME_DATE.exec(value);
  if (m) return utcSeconds(+m[6], m[1], +m[2].trim(), +m[3], +m[4], +m[5]);
  return null;
}

/** RFC 9110: a two-digit year more than 50 years ahead is the most recent past one. */
function fullYear(yy: number): number {
  const now = new Date().getUTCFullYear();
  let year = now - (now % 100) + yy;
  if (year > now + 50) year -= 100;
  return year;
}

function utcSeconds(
  year: number,
  month: string,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number | null {
  // The grammar allows second 60 (a leap second); the clock has none.
  if (hour > 23 || minute > 59 || second > 60) return null;
  const monthIndex = MONTHS.indexOf(month);
  // Not Date.UTC: it reads years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(year, monthIndex, day);
  // 31 Feb and the like roll over into the next month: not a date.
  if (date.getUTCDate() !== day) return null;
  date.setUTCHours(hour, minute, Math.min(second, 59));
  return epochSeconds(date.getTime());
}

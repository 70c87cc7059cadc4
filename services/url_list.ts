/** Turns the text bodies users send into URL lists. Free of HTTP. */

/** One URL per line; blank lines and `#` comments are skipped. */
export function parseLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/** Raised for CSV that cannot be read. */
export class CsvError extends Error {}

/**
 * RFC 4180 CSV. Takes the column named `url` or `source_url` when the first
 * row names one, else the first column of every row.
 */
export function parseCsvUrls(text: string): string[] {
  const rows = parseCsv(text).filter((r) => !(r.length === 1 && r[0].trim() === ""));
  if (rows.length === 0) return [];
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const named = header.findIndex((h) => h === "url" || h === "source_url");
  const column = named >= 0 ? named : 0;
  const body = named >= 0 ? rows.slice(1) : rows;
  return body.map((r) => (r[column] ?? "").trim()).filter((u) => u !== "" && !u.startsWith("#"));
}

function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"') {
      if (field !== "") throw new CsvError(`stray quote in row ${rows.length + 1}`);
      quoted = true;
    } else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += ch;
    }
    i++;
  }
  if (quoted) throw new CsvError("unterminated quoted field");
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Keeps the first occurrence of each URL, in order: repeats count once. */
export function uniqueUrls(urls: string[]): string[] {
  return [...new Set(urls)];
}

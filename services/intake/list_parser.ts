/**
 * Turns a text or CSV list, fed as bytes in pieces, into the entries of a
 * job: valid URLs once each (repeats count once, as in JSON), invalid lines
 * as entries of their own that become failed items, and the lines that
 * repeated an earlier URL, so the results file can still show one row per
 * input line.
 */
import { CsvRows, CsvSyntaxError } from "./csv_rows.ts";
import { MAX_URL_LENGTH, urlProblem } from "./url_check.ts";

/** Most URLs (lines naming one) in one text, CSV or multipart body. */
export const MAX_LIST_URLS = 100_000;

/** Longest CSV row kept, in characters (the URL's own field included). */
const MAX_ROW_CHARS = 16_384;

/** One future item of a job, in input order. */
export interface ListEntry {
  url: string;
  /** 1-based line in the body (text and CSV). */
  line?: number;
  /** The CSV row's fields, as sent. */
  columns?: string[];
  /** Why the line is not a valid URL: the item is created failed. */
  invalid?: string;
}

/** A line that named a URL already listed: no item of its own. */
export interface RepeatedLine {
  line: number;
  /** The entry (item index) it repeats. */
  index: number;
  columns?: string[];
}

export interface ParsedList {
  entries: ListEntry[];
  repeats: RepeatedLine[];
  /** The CSV header row when the first row named a `url` or `source_url` column. */
  csvHeader?: string[];
  /** Entries that are valid URLs. */
  valid: number;
}

/** The list cannot be read at all (bad CSV, too many URLs): the request is refused. */
export class ListError extends Error {}

export type ListFormat = "text" | "csv";

export class ListParser {
  readonly #entries: ListEntry[] = [];
  readonly #repeats: RepeatedLine[] = [];
  readonly #seen = new Map<string, number>();
  readonly #decoder = new TextDecoder();
  #valid = 0;
  #urls = 0;
  #pending = "";
  #line = 0;
  #csv: CsvRows | undefined;
  #firstRow = true;
  #column = 0;
  #csvHeader: string[] | undefined;

  constructor(readonly format: ListFormat, private readonly maxUrls = MAX_LIST_URLS) {
    if (format === "csv") this.#csv = new CsvRows((fields, line) => this.#onRow(fields, line));
  }

  push(bytes: Uint8Array): void {
    this.#text(this.#decoder.decode(bytes, { stream: true }));
  }

  end(): ParsedList {
    this.#text(this.#decoder.decode());
    try {
      if (this.#csv) this.#csv.end();
      else if (this.#pending !== "") this.#onLine(this.#pending, ++this.#line);
    } catch (err) {
      if (err instanceof CsvSyntaxError) throw new ListError(`Malformed CSV: ${err.message}`);
      throw err;
    }
    return {
      entries: this.#entries,
      repeats: this.#repeats,
      valid: this.#valid,
      ...(this.#csvHeader ? { csvHeader: this.#csvHeader } : {}),
    };
  }

  #text(text: string): void {
    if (text === "") return;
    if (this.#csv) {
      try {
        this.#csv.push(text);
      } catch (err) {
        if (err instanceof CsvSyntaxError) throw new ListError(`Malformed CSV: ${err.message}`);
        throw err;
      }
      return;
    }
    const parts = (this.#pending + text).split("\n");
    this.#pending = parts.pop()!;
    for (const part of parts) this.#onLine(part, ++this.#line);
  }

  #onLine(raw: string, line: number): void {
    const text = raw.trim();
    if (text === "" || text.startsWith("#")) return;
    this.#add(text, line);
  }

  #onRow(fields: string[], line: number): void {
    if (this.#firstRow) {
      this.#firstRow = false;
      const named = fields.findIndex((h) => {
        const name = h.trim().toLowerCase();
        return name === "url" || name === "source_url";
      });
      if (named >= 0) {
        this.#column = named;
        this.#csvHeader = fields;
        return;
      }
    }
    const text = (fields[this.#column] ?? "").trim();
    if (text === "" || text.startsWith("#")) return;
    this.#add(text, line, fields);
  }

  #add(url: string, line: number, columns?: string[]): void {
    if (++this.#urls > this.maxUrls) {
      throw new ListError(`The list names more than ${this.maxUrls} URLs.`);
    }
    // Each row is kept in one KV value of at most 64 KiB, with its URL.
    if (columns && columns.reduce((n, f) => n + f.length, 0) > MAX_ROW_CHARS) {
      throw new ListError(`line ${line}: the row is longer than ${MAX_ROW_CHARS} characters.`);
    }
    const problem = urlProblem(url);
    if (problem) {
      const entry: ListEntry = { url: url.slice(0, MAX_URL_LENGTH), line };
      if (columns) entry.columns = columns;
      entry.invalid = `line ${line}: ${problem}`;
      this.#entries.push(entry);
      return;
    }
    const earlier = this.#seen.get(url);
    if (earlier !== undefined) {
      const repeat: RepeatedLine = { line, index: earlier };
      if (columns) repeat.columns = columns;
      this.#repeats.push(repeat);
      return;
    }
    this.#seen.set(url, this.#entries.length);
    // Built field by field: object spreads cost measurably at 100,000 entries.
    const entry: ListEntry = { url, line };
    if (columns) entry.columns = columns;
    this.#entries.push(entry);
    this.#valid++;
  }
}

/**
 * An RFC 4180 CSV reader fed text in pieces of any size, so a large upload
 * is read as it arrives. Each row comes with the 1-based line it starts on
 * (a quoted field may span lines).
 */

/** Raised for CSV that cannot be read. */
export class CsvSyntaxError extends Error {}

export type RowSink = (fields: string[], line: number) => void;

export class CsvRows {
  #row: string[] = [];
  #field = "";
  #quoted = false;
  /** The previous piece ended on a quote inside a quoted field: escape or end? */
  #quotePending = false;
  /** The previous piece ended on a CR: a following LF belongs to it. */
  #afterCr = false;
  /** The last character inside the quoted field was a CR. */
  #quotedCr = false;
  #line = 1;
  #rowLine = 1;
  /** Whether the current row has any content (a field separator or a character). */
  #started = false;

  constructor(private readonly onRow: RowSink) {}

  push(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (this.#afterCr) {
        this.#afterCr = false;
        if (ch === "\n") continue;
      }
      if (this.#quotePending) {
        this.#quotePending = false;
        if (ch === '"') {
          this.#field += '"';
          continue;
        }
        this.#quoted = false;
        this.#quotedCr = false;
      }
      if (this.#quoted) {
        if (ch === '"') {
          this.#quotePending = true;
          continue;
        }
        // A CRLF is one line break, even when split across pieces.
        if (ch === "\r" || (ch === "\n" && !this.#quotedCr)) this.#line++;
        this.#quotedCr = ch === "\r";
        this.#field += ch;
        continue;
      }
      if (ch === '"') {
        if (this.#field !== "") {
          throw new CsvSyntaxError(`line ${this.#line}: a quote inside an unquoted field`);
        }
        this.#quoted = true;
        this.#started = true;
      } else if (ch === ",") {
        this.#row.push(this.#field);
        this.#field = "";
        this.#started = true;
      } else if (ch === "\n" || ch === "\r") {
        this.#endRow();
        this.#line++;
        this.#rowLine = this.#line;
        if (ch === "\r") this.#afterCr = true;
      } else {
        this.#field += ch;
        this.#started = true;
      }
    }
  }

  /** Ends the input: the last row needs no line break. */
  end(): void {
    if (this.#quoted && !this.#quotePending) {
      throw new CsvSyntaxError(`line ${this.#rowLine}: a quoted field is never closed`);
    }
    this.#quoted = false;
    this.#quotePending = false;
    if (this.#started || this.#field !== "") this.#endRow();
  }

  #endRow(): void {
    this.#row.push(this.#field);
    const row = this.#row;
    const started = this.#started;
    this.#row = [];
    this.#field = "";
    this.#started = false;
    // An empty line is no row.
    if (started || row.length > 1 || row[0] !== "") this.onRow(row, this.#rowLine);
  }
}

/**
 * Recognises SVG documents so they can be refused with a precise reason.
 *
 * SVG is markup, not a raster: it may script, fetch and expand arbitrarily, so it is never
 * accepted. Only the prolog (BOM, whitespace, XML declaration, processing instructions,
 * comments, doctype) is skipped to find the root element; anything heavier would be parsing.
 */

/** How far into a document the root element is looked for. */
export const SVG_SCAN_LIMIT = 64 * 1024;

/** Outcome of looking for an SVG root element. */
export type MarkupVerdict =
  | { kind: "svg" }
  /** Text or markup with another root (`root` is its element name when there is one). */
  | { kind: "other"; root?: string }
  /** The bytes so far end inside the prolog. */
  | { kind: "undecided" };

const UNDECIDED: MarkupVerdict = { kind: "undecided" };

const UTF8_BOM = [0xef, 0xbb, 0xbf];
const BOMS = [UTF8_BOM, [0xff, 0xfe], [0xfe, 0xff]];

/** Whether `a` is a prefix of (or equal to) `b`. */
function isPrefix(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r";
}

/** Decodes the start of the document, honouring a UTF-8 or UTF-16 byte-order mark. */
function decodeStart(head: Uint8Array): string {
  const window = head.subarray(0, SVG_SCAN_LIMIT);
  let encoding = "utf-8";
  if (window[0] === 0xff && window[1] === 0xfe) encoding = "utf-16le";
  else if (window[0] === 0xfe && window[1] === 0xff) encoding = "utf-16be";
  // TextDecoder drops the BOM itself.
  return new TextDecoder(encoding).decode(window);
}

/** Index just past the doctype starting at `from`, skipping quoted strings and `[...]`. */
function doctypeEnd(text: string, from: number): number {
  let quote = "";
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "[") depth++;
    else if (c === "]") depth--;
    else if (c === ">" && depth <= 0) return i + 1;
  }
  return -1;
}

/** Skips the prolog of `text` and judges its root element. */
function judge(text: string): MarkupVerdict {
  let i = 0;
  for (;;) {
    while (i < text.length && isSpace(text[i])) i++;
    if (i >= text.length) return UNDECIDED;
    if (text[i] !== "<") return { kind: "other" };
    const rest = text.slice(i, i + 9);
    let end: number;
    if (rest.startsWith("<?")) {
      end = text.indexOf("?>", i + 2);
      if (end >= 0) end += 2;
    } else if (rest.startsWith("<!--")) {
      end = text.indexOf("-->", i + 4);
      if (end >= 0) end += 3;
    } else if (rest.toUpperCase() === "<!DOCTYPE") {
      end = doctypeEnd(text, i + 9);
    } else if (rest.length < 9 && ("<!--".startsWith(rest) || "<!DOCTYPE".startsWith(rest))) {
      return UNDECIDED; // a comment or doctype may be starting
    } else {
      const name = /^<([^\s/>]*)/.exec(text.slice(i, i + 256))![1];
      // The name may go on in bytes not yet received.
      if (i + 1 + name.length >= text.length) return UNDECIDED;
      if (!name) return { kind: "other" };
      // Compare the local name, so that a namespace prefix (`<svg:svg`) is still seen as SVG.
      const local = name.slice(name.indexOf(":") + 1).toLowerCase();
      return local === "svg" ? { kind: "svg" } : { kind: "other", root: name };
    }
    if (end < 0) return UNDECIDED;
    i = end;
  }
}

/**
 * Looks for an SVG root element at the start of `head`. `undecided` means the bytes so far end
 * inside the prolog; it is only returned while more bytes could still arrive and fit the window.
 */
export function sniffMarkup(head: Uint8Array, isComplete: boolean): MarkupVerdict {
  // A partial byte-order mark may still turn out to start a text document.
  if (!isComplete && head.length < 3 && BOMS.some((bom) => isPrefix(head, bom))) return UNDECIDED;
  // Most non-images (JSON, binary) are settled by their first significant byte, without
  // decoding a window of text; UTF-16 is left to the decoder.
  let i = isPrefix(UTF8_BOM, head.subarray(0, 3)) ? 3 : 0;
  while (i < head.length && isSpace(String.fromCharCode(head[i]))) i++;
  const utf16 = head.length >= 2 && BOMS.slice(1).some((bom) => isPrefix(bom, head.subarray(0, 2)));
  if (!utf16 && i < head.length && head[i] !== 0x3c) return { kind: "other" };

  const verdict = judge(decodeStart(head));
  if (verdict.kind === "undecided" && (isComplete || head.length >= SVG_SCAN_LIMIT)) {
    return { kind: "other" };
  }
  return verdict;
}

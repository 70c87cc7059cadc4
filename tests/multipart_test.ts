import assert from "node:assert/strict";
import { CsvRows, CsvSyntaxError } from "../services/intake/csv_rows.ts";
import { ListParser } from "../services/intake/list_parser.ts";
import { boundaryOf, MultipartError, readMultipart } from "../services/intake/multipart.ts";

/** A form serialised by Deno's own FormData encoder. */
async function encoded(form: FormData): Promise<{ bytes: Uint8Array; type: string }> {
  const req = new Request("http://localhost/", { method: "POST", body: form });
  return { bytes: new Uint8Array(await req.arrayBuffer()), type: req.headers.get("content-type")! };
}

async function* inPieces(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function parts(bytes: Uint8Array, boundary: string, size: number) {
  const out: { name: string; filename?: string; contentType?: string; body: string }[] = [];
  await readMultipart(inPieces(bytes, size), boundary, (info) => {
    const chunks: Uint8Array[] = [];
    return {
      write: (b) => {
        chunks.push(b);
      },
      end: () => {
        const body = new TextDecoder().decode(
          Uint8Array.from(chunks.flatMap((c) => [...c])),
        );
        out.push({ ...info, body });
      },
    };
  });
  return out;
}

Deno.test("readMultipart() reads Deno's FormData encoding, whatever the read sizes", async () => {
  const form = new FormData();
  form.append("refresh", "true");
  // Bodies that look like delimiters, CRLFs, and non-ASCII names.
  const list = "https://a.example/1.png\r\n--not-the-boundary\r\n\r\nhttps://b.example/é.png\r\n";
  form.append("file", new File([list], "liste é.csv", { type: "text/csv" }));
  form.append("callback_url", "");
  const { bytes, type } = await encoded(form);
  const boundary = boundaryOf(type)!;
  for (const size of [1, 2, 3, 5, 7, 16, 64, 1 << 20]) {
    const got = await parts(bytes, boundary, size);
    assert.deepEqual(got, [
      { name: "refresh", body: "true" },
      { name: "file", filename: "liste é.csv", contentType: "text/csv", body: list },
      { name: "callback_url", body: "" },
    ], `read ${size} bytes at a time`);
  }
});

Deno.test("readMultipart() refuses a body without its closing delimiter or part names", async () => {
  const cut = new TextEncoder().encode(
    '--b\r\nContent-Disposition: form-data; name="x"\r\n\r\nabc',
  );
  await assert.rejects(() => parts(cut, "b", 4), MultipartError);
  const nameless = new TextEncoder().encode(
    "--b\r\nContent-Type: text/plain\r\n\r\nabc\r\n--b--\r\n",
  );
  await assert.rejects(() => parts(nameless, "b", 4), MultipartError);
  assert.equal(boundaryOf('multipart/form-data; boundary="a b"'), "a b");
  assert.equal(boundaryOf("multipart/form-data"), null);
});

Deno.test("CsvRows reads the same rows and lines whatever the pieces", () => {
  const csv = 'a,b\r\n"x, ""y""",2\r\n\r\n"multi\r\nline",3\n"e"\r\nlast,4';
  const whole: [string[], number][] = [];
  const reader = new CsvRows((f, l) => whole.push([f, l]));
  reader.push(csv);
  reader.end();
  assert.deepEqual(whole, [
    [["a", "b"], 1],
    [['x, "y"', "2"], 2],
    [["multi\r\nline", "3"], 4],
    [["e"], 6],
    [["last", "4"], 7],
  ]);
  for (const size of [1, 2, 3]) {
    const rows: [string[], number][] = [];
    const r = new CsvRows((f, l) => rows.push([f, l]));
    for (let i = 0; i < csv.length; i += size) r.push(csv.slice(i, i + size));
    r.end();
    assert.deepEqual(rows, whole, `pieces of ${size}`);
  }
  assert.throws(() => {
    const r = new CsvRows(() => {});
    r.push('"open');
    r.end();
  }, CsvSyntaxError);
  assert.throws(() => new CsvRows(() => {}).push('ab"c'), CsvSyntaxError);
});

Deno.test("ListParser: text lines split across reads keep their numbers; UTF-8 split mid-character", () => {
  const text = "# c\nhttps://a.example/é.png\n\nbad\nhttps://a.example/é.png\n";
  const bytes = new TextEncoder().encode(text);
  const p = new ListParser("text");
  for (let i = 0; i < bytes.length; i++) p.push(bytes.subarray(i, i + 1));
  const list = p.end();
  assert.deepEqual(list.entries, [
    { url: "https://a.example/é.png", line: 2 },
    { url: "bad", line: 4, invalid: "line 4: not an absolute URL" },
  ]);
  assert.deepEqual(list.repeats, [{ line: 5, index: 0 }]);
  assert.equal(list.valid, 1);
});

Deno.test("readMultipart() reads no further while a part's sink has not taken its last chunk", async () => {
  const file = new Uint8Array(64 * 1024).fill(7);
  const { bytes, type } = await encoded(
    (() => {
      const f = new FormData();
      f.append("image", new File([file], "a.bin"));
      return f;
    })(),
  );
  let pulled = 0;
  async function* counted(): AsyncIterable<Uint8Array> {
    for (let i = 0; i < bytes.length; i += 1024) {
      pulled++;
      yield bytes.slice(i, i + 1024);
    }
  }
  const held: (() => void)[] = [];
  let received = 0;
  const reading = readMultipart(counted(), boundaryOf(type)!, () => ({
    write: (b) => {
      received += b.length;
      return new Promise<void>((resolve) => held.push(resolve));
    },
    end: () => {},
  }));
  await new Promise((r) => setTimeout(r, 50));
  // One chunk went to the sink and nothing more was read while it is held.
  assert.equal(held.length, 1);
  assert.ok(pulled <= 2, `read ${pulled} chunks`);
  let finished = false;
  reading.then(() => finished = true, () => finished = true);
  while (!finished) {
    held.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  }
  await reading;
  assert.equal(received, file.length);
});

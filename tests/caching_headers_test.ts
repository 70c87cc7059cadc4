import { BlobRefs } from "../services/store/blob_refs.ts";
import { DiskBlobStore } from "../services/blobs/disk_blob_store.ts";
import assert from "node:assert/strict";
import {
  cachingFrom,
  conditionalFrom,
  etagsMatchWeakly,
  keptFor,
  MAX_CACHING_HEADER_CHARS,
  MAX_CACHING_URL_CHARS,
  mergeCaching,
} from "../services/fetch/caching.ts";
import { ImagesRepo } from "../services/store/images_repo.ts";
import { keys } from "../services/store/kv_keys.ts";
import { MAX_URL_LENGTH } from "../routes/schemas.ts";

Deno.test("cachingFrom() keeps the four headers as sent, obs-text bytes included", () => {
  const headers = new Headers({
    etag: 'W/"caf\u00e9;v=1, x"',
    "last-modified": "Tue, 17 Nov 2026 08:12:31 GMT",
    "cache-control": "public, max-age=60",
    expires: "0",
    "content-type": "image/png",
  });
  assert.deepEqual(cachingFrom(headers), {
    etag: 'W/"caf\u00e9;v=1, x"',
    lastModified: "Tue, 17 Nov 2026 08:12:31 GMT",
    cacheControl: "public, max-age=60",
    expires: "0",
  });
  assert.deepEqual(cachingFrom(new Headers()), {});
});

Deno.test("cachingFrom() drops values over the bound rather than cutting them", () => {
  const long = `"${"a".repeat(MAX_CACHING_HEADER_CHARS - 1)}"`;
  const atBound = `"${"b".repeat(MAX_CACHING_HEADER_CHARS - 2)}"`;
  assert.equal(cachingFrom(new Headers({ etag: long })).etag, undefined);
  assert.equal(cachingFrom(new Headers({ etag: atBound })).etag, atBound);
  const control = `max-age=1, ${"x".repeat(MAX_CACHING_HEADER_CHARS)}`;
  assert.equal(cachingFrom(new Headers({ "cache-control": control })).cacheControl, undefined);
});

Deno.test("cachingFrom() drops a Last-Modified that is not a date and refuses control characters", () => {
  assert.equal(cachingFrom(new Headers({ "last-modified": "yesterday" })).lastModified, undefined);
  assert.equal(cachingFrom(new Headers({ etag: '"a\u0001b"' })).etag, undefined);
  // A tab is allowed inside a field value (RFC 9110 section 5.5).
  assert.equal(cachingFrom(new Headers({ etag: '"a\tb"' })).etag, '"a\tb"');
});

Deno.test("etagsMatchWeakly() ignores W/ on either side and nothing else", () => {
  assert.ok(etagsMatchWeakly('W/"x"', '"x"'));
  assert.ok(etagsMatchWeakly('"x"', 'W/"x"'));
  assert.ok(etagsMatchWeakly('W/"x"', 'W/"x"'));
  assert.ok(!etagsMatchWeakly('"x"', '"X"'));
  assert.ok(!etagsMatchWeakly('"x"', "x"));
});

Deno.test("mergeCaching() lets a 304's headers replace the stored ones and keeps the rest", () => {
  assert.deepEqual(
    mergeCaching(
      { etag: '"a"', lastModified: "Mon, 16 Nov 2026 10:00:00 GMT", cacheControl: "max-age=1" },
      { cacheControl: "max-age=9", expires: "0" },
    ),
    {
      etag: '"a"',
      lastModified: "Mon, 16 Nov 2026 10:00:00 GMT",
      cacheControl: "max-age=9",
      expires: "0",
    },
  );
});

Deno.test("keptFor() names the answering URL only when a redirect changed it", () => {
  const found = { etag: '"a"', cacheControl: "max-age=1" };
  assert.deepEqual(keptFor(found, "http://h.test/a.png", "HTTP://H.test/a.png"), found);
  assert.deepEqual(keptFor(found, "http://h.test/b.png", "http://h.test/a.png"), {
    ...found,
    url: "http://h.test/b.png",
  });
  const far = `http://h.test/${"p".repeat(9000)}`;
  assert.deepEqual(keptFor(found, far, "http://h.test/a.png"), { cacheControl: "max-age=1" });
});

Deno.test("conditionalFrom() needs a validator and sends it to the answering URL", () => {
  assert.equal(conditionalFrom(undefined, "http://h.test/a"), null);
  assert.equal(conditionalFrom({ cacheControl: "max-age=1" }, "http://h.test/a"), null);
  assert.deepEqual(conditionalFrom({ etag: '"a"' }, "HTTP://h.test/a"), {
    url: "http://h.test/a",
    etag: '"a"',
  });
  assert.deepEqual(
    conditionalFrom(
      { lastModified: "Mon, 16 Nov 2026 10:00:00 GMT", url: "http://h.test/b" },
      "http://h.test/a",
    ),
    { url: "http://h.test/b", lastModified: "Mon, 16 Nov 2026 10:00:00 GMT" },
  );
});

Deno.test("an image record with every field at its bound still fits one KV value", async () => {
  const kv = await Deno.openKv(":memory:");
  const dir = await Deno.makeTempDir();
  const blobs = new DiskBlobStore(dir);
  try {
    const images = new ImagesRepo(kv, keys(), { refs: new BlobRefs(kv), blobs });
    const at = (n: number, c: string) => c.repeat(n);
    // Two-byte characters in the submitted URL: the longest it can be in storage.
    const url = `http://h.test/${at(MAX_URL_LENGTH - 14, "\u20ac")}`;
    const bound = (c: string) => `"${at(MAX_CACHING_HEADER_CHARS - 2, c)}"`;
    const record = {
      url,
      sha256: "0".repeat(64),
      bytes: 1,
      format: "png" as const,
      contentType: "image/png",
      width: 1,
      height: 1,
      storedAt: 1,
      checkedAt: 2,
      jobId: "01KAQ4Z3T7V6B6XG5N3W2R8M9C",
      origin: "download" as const,
      caching: {
        etag: bound("\u00ff"),
        lastModified: "Tue, 17 Nov 2026 08:12:31 GMT",
        cacheControl: bound("c"),
        expires: bound("e"),
        url: `http://h.test/${at(MAX_CACHING_URL_CHARS - 14, "u")}`,
      },
    };
    const stored = await images.put(record, "h");
    assert.deepEqual(await images.get("h"), stored);
  } finally {
    kv.close();
    blobs.close();
    await Deno.remove(dir, { recursive: true });
  }
});

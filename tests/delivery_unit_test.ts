import assert from "node:assert/strict";
import { epochSeconds, httpDate, parseHttpDate } from "../routes/delivery_date.ts";
import { ConfigError, parseConfig } from "../services/config.ts";
import { contentDisposition, downloadName, MAX_STEM_BYTES } from "../routes/delivery_filename.ts";

const SUN_1994 = Date.UTC(1994, 10, 6, 8, 49, 37) / 1000;

Deno.test("httpDate() writes IMF-fixdate, and parseHttpDate() reads it back to the second", () => {
  const ms = Date.UTC(2026, 11, 3, 20, 58, 24, 987);
  assert.equal(httpDate(ms), "Thu, 03 Dec 2026 20:58:24 GMT");
  assert.equal(parseHttpDate(httpDate(ms)), epochSeconds(ms));
});

Deno.test("parseHttpDate() reads the three forms RFC 9110 requires, as GMT", () => {
  assert.equal(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), SUN_1994);
  assert.equal(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), SUN_1994);
  assert.equal(parseHttpDate("Sun Nov  6 08:49:37 1994"), SUN_1994);
});

Deno.test("parseHttpDate() refuses anything else, rather than guessing", () => {
  for (
    const bad of [
      "",
      "yesterday",
      "2026-12-03T20:58:24Z",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "Sun, 6 Nov 1994 08:49:37 GMT",
      "sun, 06 nov 1994 08:49:37 GMT",
      "Sun, 31 Feb 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
      " Sun, 06 Nov 1994 08:49:37 GMT",
    ]
  ) {
    assert.equal(parseHttpDate(bad), null, bad);
  }
});

Deno.test("downloadName() takes the URL's last path segment, percent-decoded", () => {
  assert.equal(downloadName("https://a.example/cats/42.jpg", "jpeg"), "42.jpg");
  assert.equal(
    downloadName("https://a.example/cats/Photo%20One.JPEG?x=1#y", "jpeg"),
    "Photo One.JPEG",
  );
  assert.equal(downloadName("https://a.example/p/caf%C3%A9.png", "png"), "café.png");
  assert.equal(downloadName("https://a.example/%E6%97%A5%E6%9C%AC.gif", "gif"), "日本.gif");
});

Deno.test("downloadName() ends with the extension of the format served", () => {
  assert.equal(downloadName("https://a.example/index.php", "png"), "index.png");
  assert.equal(downloadName("https://a.example/a.jpeg", "webp"), "a.webp");
  assert.equal(downloadName("https://a.example/scan.TIF", "tiff"), "scan.TIF");
  assert.equal(downloadName("https://a.example/photo", "jpeg"), "photo.jpg");
  // Not an extension (too long, or spaces): the whole name is kept.
  assert.equal(downloadName("https://a.example/v1.final%20cut", "png"), "v1.final cut.png");
});

Deno.test("downloadName() falls back to image.<ext> when the path names no file", () => {
  assert.equal(downloadName("https://a.example/", "png"), "image.png");
  assert.equal(downloadName("https://a.example", "jpeg"), "image.jpg");
  assert.equal(downloadName("https://a.example/dir/", "ico"), "image.ico");
  assert.equal(downloadName("https://a.example/...", "gif"), "image.gif");
  assert.equal(downloadName("https://a.example/%20.png", "png"), "image.png");
  assert.equal(downloadName("not a url", "bmp"), "image.bmp");
});

Deno.test("downloadName() replaces separators, control and bidi characters", () => {
  assert.equal(downloadName("https://a.example/a%2Fb%5Cc.png", "png"), "a_b_c.png");
  assert.equal(
    downloadName("https://a.example/..%2F..%2Fetc%2Fpasswd", "png"),
    "_.._etc_passwd.png",
  );
  assert.equal(downloadName("https://a.example/a%0D%0AX-Evil:%201.png", "png"), "a__X-Evil: 1.png");
  assert.equal(downloadName("https://a.example/a%00b.png", "png"), "a_b.png");
  // U+202E would show "evil\u202Egnp.exe" as "evilexe.png".
  assert.equal(downloadName("https://a.example/evil%E2%80%AEgnp.exe", "png"), "evil_gnp.png");
  // Not UTF-8 once decoded: the escapes stay as they were.
  assert.equal(downloadName("https://a.example/caf%E9.png", "png"), "caf%E9.png");
});

Deno.test("downloadName() caps very long names on a character boundary", () => {
  const long = downloadName(`https://a.example/${"a".repeat(5000)}.png`, "png");
  assert.equal(long, `${"a".repeat(MAX_STEM_BYTES)}.png`);
  const emoji = downloadName(`https://a.example/${"%F0%9F%90%88".repeat(100)}.png`, "png");
  const stem = emoji.slice(0, -4);
  assert.equal(new TextEncoder().encode(stem).byteLength, Math.floor(MAX_STEM_BYTES / 4) * 4);
  assert.equal(stem, "\u{1F408}".repeat(Math.floor(MAX_STEM_BYTES / 4)));
});

Deno.test("contentDisposition() is plain ASCII, with filename* only when it differs", () => {
  assert.equal(contentDisposition("42.jpg"), 'inline; filename="42.jpg"');
  assert.equal(
    contentDisposition('say "hi".png'),
    `inline; filename="say _hi_.png"; filename*=UTF-8''say%20%22hi%22.png`,
  );
  assert.equal(
    contentDisposition("a;b\\c.png"),
    `inline; filename="a_b_c.png"; filename*=UTF-8''a%3Bb%5Cc.png`,
  );
  assert.equal(
    contentDisposition("café.png"),
    `inline; filename="caf_.png"; filename*=UTF-8''caf%C3%A9.png`,
  );
  assert.equal(
    contentDisposition("100%.png"),
    `inline; filename="100_.png"; filename*=UTF-8''100%25.png`,
  );
  // RFC 8187 attr-char excludes ' ( ) *, which encodeURIComponent leaves alone.
  assert.equal(
    contentDisposition("it's (1)*.png"),
    `inline; filename="it's (1)*.png"`,
  );
  assert.equal(
    contentDisposition("é it's (1)*.png"),
    `inline; filename="_ it's (1)*.png"; filename*=UTF-8''%C3%A9%20it%27s%20%281%29%2A.png`,
  );
});

Deno.test("every header value built from a hostile URL is a valid header value", () => {
  const hostile = [
    "https://a.example/a%0D%0ASet-Cookie:%20x=1.png",
    "https://a.example/%22%3B%20filename=evil.exe",
    "https://a.example/%F0%9F%90%88%E2%80%AE.png",
    `https://a.example/${"%C3%A9".repeat(2000)}`,
  ];
  for (const url of hostile) {
    const value = contentDisposition(downloadName(url, "png"));
    assert.match(value, /^[\x20-\x7e]+$/, url);
    assert.doesNotThrow(() => new Headers({ "content-disposition": value }));
    assert.ok(value.length < 2000, `${value.length} chars`);
    assert.match(
      value,
      /^inline; filename="[^"\\]*"(; filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]+)?$/,
    );
  }
});

Deno.test("CONTENT_CACHE_CONTROL defaults to an hour and must be a header value", () => {
  assert.equal(parseConfig({}).contentCacheControl, "public, max-age=3600");
  assert.equal(parseConfig({ CONTENT_CACHE_CONTROL: "no-cache" }).contentCacheControl, "no-cache");
  for (const bad of ["max-age=1\r\nX-Evil: 1", "caf\u00e9", " leading", "trailing "]) {
    assert.throws(() => parseConfig({ CONTENT_CACHE_CONTROL: bad }), ConfigError, bad);
  }
});

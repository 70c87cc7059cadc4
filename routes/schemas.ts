import { z } from "@hono/zod-openapi";
import { VariantShape, VariantSpecsSchema } from "../services/transform/variants.ts";
import { MAX_CACHING_HEADER_CHARS } from "../services/fetch/caching.ts";
import { FAILURE_REASON_DESCRIPTIONS, FAILURE_REASONS } from "../services/fetch/reasons.ts";

export const MAX_URLS = 10_000;
export const MAX_URL_LENGTH = 8192;

const EXAMPLE_URL = "https://images.example.com/cats/42.jpg";

function isHttpUrl(s: string): boolean {
  if (!URL.canParse(s)) return false;
  const { protocol } = new URL(s);
  return protocol === "http:" || protocol === "https:";
}

export const ImageUrl = z.string()
  .max(MAX_URL_LENGTH)
  .refine(isHttpUrl, { message: "must be an absolute http or https URL" })
  .openapi({ example: EXAMPLE_URL, description: "An absolute http(s) URL of at most 8 KiB." });

const UrlList = z.array(ImageUrl).min(1).max(MAX_URLS);

/** Checked further (address policy, WEBHOOK_SECRET) when the job is submitted. */
export const CallbackUrl = z.string().max(MAX_URL_LENGTH)
  .refine(isHttpUrl, { message: "must be an absolute http or https URL" })
  .openapi({
    example: "https://hooks.example.com/image-jobs",
    description: "Where the job's summary is POSTed, signed (Standard Webhooks), when it " +
      "ends. Needs `WEBHOOK_SECRET` on the service; the address must pass the same policy as " +
      "image downloads, else `400`.",
  });

export const SubmitBody = z.strictObject({
  urls: UrlList.optional().openapi({
    description: "The image URLs. Repeats count once.",
  }),
  source_url: z.union([UrlList, ImageUrl]).optional().openapi({
    description: "Accepted in place of `urls`, as sent to the service this one replaces.",
  }),
  refresh: z.boolean().optional().openapi({
    description: "Ask the origin again even for stored URLs, sending the stored validators " +
      "(`If-None-Match`, `If-Modified-Since`): a `304` keeps the stored image (the item shows " +
      "`revalidated: true`), a `200` stores the new bytes.",
  }),
  callback_url: CallbackUrl.optional(),
  variants: VariantSpecsSchema.optional().openapi({
    description: "Named variants to compute for every image of the job (JSON only), " +
      "listed in each image's metadata and in the job's results.",
    example: [{ name: "thumb", w: 256, format: "webp" }],
  }),
}).refine((b) => (b.urls === undefined) !== (b.source_url === undefined), {
  message: "give exactly one of `urls` or `source_url`",
  path: ["urls"],
}).openapi("SubmitRequest", {
  example: { urls: [EXAMPLE_URL, "https://cdn.example.org/a.png"] },
});

export type SubmitBody = z.infer<typeof SubmitBody>;

const reasonDescription = Object.entries(FAILURE_REASON_DESCRIPTIONS)
  .map(([k, v]) => `- \`${k}\`: ${v}`).join("\n");

export const FailureReason = z.union([
  z.enum(FAILURE_REASONS),
  z.string().regex(/^http_\d{3}$/),
]).openapi("FailureReason", {
  description: `Why a URL failed. One of:\n${reasonDescription}`,
  example: "http_404",
});

const Timestamp = z.string().openapi({
  format: "date-time",
  example: "2026-11-23T18:47:15.123Z",
});

export const Job = z.object({
  id: z.string().openapi({ example: "01KAQ4Z3T7V6B6XG5N3W2R8M9C" }),
  status: z.enum(["pending", "in-progress", "complete", "cancelled"]).openapi({
    description: "`cancelled` from the moment of a `DELETE /jobs/{id}`; downloads already " +
      "in flight then finish, and `finished` is stamped after the last one.",
  }),
  created: Timestamp,
  finished: Timestamp.nullable(),
  total: z.number().int(),
  counts: z.object({
    pending: z.number().int(),
    complete: z.number().int(),
    failed: z.number().int(),
  }),
}).openapi("Job");

export const ItemStateQuery = z.enum(["pending", "complete", "failed"]);

export const JobItem = z.object({
  index: z.number().int().openapi({ description: "Position in the de-duplicated list." }),
  url: z.string().openapi({ example: EXAMPLE_URL }),
  state: ItemStateQuery,
  attempts: z.number().int().openapi({ description: "Download attempts made." }),
  reason: FailureReason.optional(),
  detail: z.string().optional().openapi({ example: "origin answered 404 Not Found" }),
  revalidated: z.boolean().optional().openapi({
    description: "Present (true) on a complete item of a refresh when the origin answered " +
      "`304 Not Modified` to the stored validators: the stored image was kept, nothing was " +
      "downloaded.",
  }),
}).openapi("JobItem");

export const JobItemPage = z.object({
  items: z.array(JobItem),
  nextCursor: z.string().nullable(),
}).openapi("JobItemPage");

/** Jobs up to this size carry their URL lists in `GET /jobs/{id}`. */
export const JOB_LISTS_MAX = 1000;

export const JobDetail = Job.extend({
  pending: z.array(z.string()).optional().openapi({
    description: "URLs not yet stored or failed (jobs of at most 1,000 URLs).",
  }),
  complete: z.array(z.string()).optional().openapi({
    description: "URLs stored (jobs of at most 1,000 URLs).",
  }),
  failed: z.array(z.object({
    url: z.string().openapi({ example: EXAMPLE_URL }),
    reason: FailureReason,
    detail: z.string().openapi({ example: "origin answered 404 Not Found" }),
  })).optional().openapi({
    description: "URLs that failed, with why (jobs of at most 1,000 URLs).",
  }),
}).openapi("JobDetail");

export const JobPage = z.object({
  items: z.array(Job),
  nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page." }),
}).openapi("JobPage");

/** A header as the origin sent it with the stored bytes (or as a 304 updated it). */
const originHeader = (name: string, example: string, use: string) =>
  z.string().nullable().openapi({
    description: `The \`${name}\` the origin sent, verbatim; null when it sent none or one ` +
      `over ${MAX_CACHING_HEADER_CHARS} characters. ${use}`,
    example,
  });

const SENT_BACK = "A refresh sends it back as a validator.";
const KEPT = "Kept for information: refreshes happen when asked, whatever it says.";

export const Image = z.object({
  url: z.string().openapi({ example: EXAMPLE_URL }),
  contentType: z.string().openapi({ example: "image/jpeg" }),
  bytes: z.number().int().openapi({ example: 40213 }),
  width: z.number().int().openapi({ example: 640 }),
  height: z.number().int().openapi({ example: 480 }),
  sha256: z.string().openapi({
    example: "9f2c6a1e0d4b5c7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e",
  }),
  storedAt: Timestamp.openapi({
    description: "When the stored bytes were last downloaded (a `200`; a `304` leaves it).",
  }),
  checkedAt: Timestamp.openapi({
    description: "When the origin last vouched for the bytes: a download or a `304` to a refresh.",
  }),
  etag: originHeader("ETag", '"5e1c-63b2f0a1"', `${SENT_BACK} Weak ETags (\`W/"..."\`) too.`),
  lastModified: originHeader(
    "Last-Modified",
    "Tue, 17 Nov 2026 08:12:31 GMT",
    `${SENT_BACK} Null also when it is not a date.`,
  ),
  cacheControl: originHeader("Cache-Control", "public, max-age=86400", KEPT),
  expires: originHeader("Expires", "Wed, 18 Nov 2026 08:12:31 GMT", KEPT),
  contentUrl: z.string().openapi({
    example: "/images/content?url=https%3A%2F%2Fimages.example.com%2Fcats%2F42.jpg",
  }),
  origin: z.enum(["download", "upload"]).openapi({
    description: "How the stored bytes came: downloaded from `url`, or sent by a client " +
      "(`POST /images/upload`, `PUT /images/content`).",
  }),
  blobUrl: z.string().openapi({
    description: "The same bytes by their hash; they never change there, so caches may keep " +
      "them for good.",
    example: "/blobs/9f2c6a1e0d4b5c7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e",
  }),
  variants: z.array(VariantShape.extend({
    contentUrl: z.string().openapi({
      example: "/images/content?url=https%3A%2F%2Fimages.example.com%2Fcats%2F42.jpg" +
        "&variant=thumb",
    }),
  })).openapi({
    description: "The named variants jobs asked for of this image, with their links " +
      "(computed right after the download; on first request otherwise).",
  }),
}).openapi("Image");

export const ImagePage = z.object({
  items: z.array(Image),
  nextCursor: z.string().nullable().openapi({
    description: "Pass as `cursor` for the next page; null on the last. Opaque. A filtered " +
      "page may hold fewer than `limit` items, even none, while more follow: follow it until " +
      "it is null.",
  }),
}).openapi("ImagePage");

export const Limit = (def: number, max: number) =>
  z.coerce.number().int().min(1).max(max).default(def).openapi({
    description: `Page size, 1 to ${max}.`,
    example: def,
  });

export const Cursor = z.string().max(200).optional().openapi({
  description: "The `nextCursor` of the previous page.",
});

export const UrlQuery = z.object({
  url: z.string().min(1).max(MAX_URL_LENGTH).openapi({
    description: "The image URL exactly as submitted.",
    example: EXAMPLE_URL,
  }),
});

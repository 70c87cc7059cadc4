import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import { BodyTooLargeError } from "../services/intake/body_reader.ts";
import { boundaryOf, MultipartError } from "../services/intake/multipart.ts";
import { BlobGone } from "../services/store/blob_refs.ts";
import { urlHash } from "../services/store/ids.ts";
import { defaultUploadKey, isDownloadKey, keyProblem } from "../services/upload/image_key.ts";
import { FORM_OVERHEAD_BYTES, readUploadForm } from "../services/upload/upload_form.ts";
import {
  BodyReadError,
  ImageRefused,
  readBody,
  type StoredUpload,
  UploadInvalid,
} from "../services/upload/uploads.ts";
import type { AppDeps } from "./deps.ts";
import type {
  PutImageContentRoute,
  RefreshImageRoute,
  UploadImageRoute,
} from "./image_manage.routes.ts";
import { notStored, ProblemError } from "./problem.ts";
import { imageView, jobView } from "./views.ts";

const metadataUrl = (key: string) => `/images/metadata?url=${encodeURIComponent(key)}`;

const REFUSAL_STATUS = {
  too_large: 413,
  not_an_image: 415,
  unsupported_format: 415,
  too_many_pixels: 422,
} as const;

/** Upload failures as problem answers; anything else goes on to `onError`. */
async function asProblem<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof ImageRefused) {
      throw new ProblemError(
        REFUSAL_STATUS[err.reason],
        `The image is refused: ${err.message}.`,
        undefined,
        err.reason,
      );
    }
    if (err instanceof BlobGone) {
      // The bytes were collected between being made durable and indexed: a retry stores them again.
      throw new ProblemError(
        503,
        "The image's bytes were removed while it was being stored; send it again.",
        undefined,
        undefined,
        { "Retry-After": "1" },
      );
    }
    if (err instanceof BodyTooLargeError) throw new ProblemError(413, err.message);
    if (err instanceof UploadInvalid || err instanceof BodyReadError) {
      throw new ProblemError(400, err.message);
    }
    if (err instanceof MultipartError) {
      throw new ProblemError(400, `Malformed multipart/form-data: ${err.message}.`);
    }
    throw err;
  }
}

/** A declared length over the limit is refused before a byte of the body is read. */
function refuseDeclaredLength(c: Context, maxBytes: number): void {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes) {
    throw new ProblemError(
      413,
      `The declared Content-Length ${declared} is larger than ${maxBytes} bytes.`,
      undefined,
      "too_large",
    );
  }
}

export function imageManageHandlers(deps: AppDeps) {
  const { images, intake, uploads } = deps;
  const { maxImageBytes } = uploads.limits;

  const stored = (c: Context, key: string, { record, created }: StoredUpload, always201: boolean) =>
    c.json(
      imageView(record),
      created || always201 ? 201 : 200,
      created || always201 ? { Location: metadataUrl(key) } : {},
    );

  const uploadImage: RouteHandler<UploadImageRoute> = async (c) => {
    refuseDeclaredLength(c, maxImageBytes + FORM_OVERHEAD_BYTES);
    const contentType = c.req.header("content-type") ?? "";
    if (contentType.split(";")[0].trim().toLowerCase() !== "multipart/form-data") {
      throw new ProblemError(415, "Send the image as multipart/form-data in the `image` field.");
    }
    const boundary = boundaryOf(contentType);
    if (!boundary) throw new ProblemError(400, "The multipart content type names no boundary.");
    const form = await asProblem(readUploadForm(uploads, c.req.raw.body, boundary));
    const key = form.key ?? defaultUploadKey(form.upload.staged.sha256);
    return stored(c, key, await asProblem(uploads.store(key, form.upload)), true) as never;
  };

  const putImageContent: RouteHandler<PutImageContentRoute> = async (c) => {
    const { url } = c.req.valid("query");
    const problem = keyProblem(url);
    if (problem) {
      throw new ProblemError(400, `\`url\` is ${problem}.`, [{ field: "url", message: problem }]);
    }
    refuseDeclaredLength(c, maxImageBytes);
    const upload = await asProblem(uploads.stage(readBody(c.req.raw.body)));
    return stored(c, url, await asProblem(uploads.store(url, upload)), false) as never;
  };

  const refreshImage: RouteHandler<RefreshImageRoute> = async (c) => {
    const { url } = c.req.valid("query");
    if (!await images.get(urlHash(url))) throw notStored(url);
    if (!isDownloadKey(url)) {
      throw new ProblemError(
        409,
        `The image under '${url}' was uploaded: there is no origin to download it from.`,
      );
    }
    const { snapshot } = await intake.submit({
      entries: [{ url }],
      repeats: [],
      refresh: true,
      source: "json",
    });
    deps.onJobCreated?.(snapshot.job.id);
    return c.json(jobView(snapshot), 202, { Location: `/jobs/${snapshot.job.id}` });
  };

  return { uploadImage, putImageContent, refreshImage };
}

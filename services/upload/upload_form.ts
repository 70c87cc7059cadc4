/**
 * Reads an upload form (`multipart/form-data`): the file in the part named
 * `image`, the field names of the services this one replaces, and an
 * optional `url` key before or after it. The file streams into staging as
 * it arrives; the key is only needed once the form is complete, so its
 * place in the form does not matter.
 */
import { BodyTooLargeError, limited } from "../intake/body_reader.ts";
import { readMultipart, textField } from "../intake/multipart.ts";
import { keyProblem, MAX_KEY_BYTES } from "./image_key.ts";
import { PartChannel } from "./part_channel.ts";
import { type CheckedUpload, type ImageUploads, readBody, UploadInvalid } from "./uploads.ts";

/** Room for the form's delimiters, part headers and `url` field beside the image. */
export const FORM_OVERHEAD_BYTES = 64 * 1024;

export interface UploadForm {
  /** The `url` field, checked; absent when the form had none. */
  key?: string;
  upload: CheckedUpload;
}

export { BodyTooLargeError };

/**
 * Reads the form and stages its image. Rejects with UploadInvalid,
 * MultipartError, BodyTooLargeError, BodyReadError, ImageRefused or a
 * storage error; nothing is left in the blob store then.
 */
export async function readUploadForm(
  uploads: ImageUploads,
  body: ReadableStream<Uint8Array> | null,
  boundary: string,
): Promise<UploadForm> {
  let channel: PartChannel | undefined;
  let staging: Promise<CheckedUpload> | undefined;
  let key: string | undefined;
  const maxBytes = uploads.limits.maxImageBytes + FORM_OVERHEAD_BYTES;
  try {
    await readMultipart(limited(readBody(body), maxBytes), boundary, (part) => {
      if (part.name === "image") {
        if (channel) throw new UploadInvalid("The form has more than one `image` part.");
        channel = new PartChannel();
        staging = uploads.stage(channel);
        staging.catch(() => {}); // awaited below, whatever happens
        return channel;
      }
      if (part.name === "url") {
        if (key !== undefined) throw new UploadInvalid("The form has more than one `url` field.");
        key = "";
        return textField(
          MAX_KEY_BYTES,
          () => new UploadInvalid(`The \`url\` field is longer than ${MAX_KEY_BYTES} bytes.`),
          (text) => {
            const problem = keyProblem(text);
            if (problem) throw new UploadInvalid(`The \`url\` field is ${problem}.`);
            key = text;
          },
        );
      }
      throw new UploadInvalid(
        `Unknown form field \`${part.name}\`: expected \`image\` or \`url\`.`,
      );
    });
  } catch (err) {
    channel?.fail(err);
    if (staging) {
      const outcome = await staging.then(
        async (done) => {
          await done.staged.discard();
          return null;
        },
        (stageError) => stageError,
      );
      // The staging's own failure (too large, not an image, disk) is the cause;
      // the reader only saw the file part stop.
      if (outcome !== null && outcome !== err) throw outcome;
    }
    throw err;
  }
  if (!staging) throw new UploadInvalid("The form has no `image` part with the file.");
  const upload = await staging;
  return { ...(key !== undefined ? { key } : {}), upload };
}

/**
 * The closed set of reasons a URL can fail with. Documented in the OpenAPI
 * document and the README; `http_<status>` stands for any non-2xx answer.
 */
export const FAILURE_REASONS = [
  "invalid_url",
  "blocked_address",
  "unreachable",
  "timeout",
  "too_many_redirects",
  "truncated",
  "not_an_image",
  "unsupported_format",
  "too_large",
  "too_many_pixels",
  "storage_error",
  "cancelled",
] as const;

export type FixedFailureReason = typeof FAILURE_REASONS[number];
export type HttpFailureReason = `http_${number}`;
export type FailureReason = FixedFailureReason | HttpFailureReason;

/** One line per reason, for the OpenAPI document and the README. */
export const FAILURE_REASON_DESCRIPTIONS: Record<FixedFailureReason | "http_<status>", string> = {
  invalid_url: "The URL cannot be parsed, is not http(s), or carries credentials.",
  blocked_address:
    "The host resolves to an address the service may not fetch (private, loopback, link-local, ...).",
  unreachable: "No connection could be made (refused, DNS failure, TLS failure).",
  timeout: "The origin did not answer, stalled, or exceeded the total time limit.",
  too_many_redirects: "More than 5 redirects, or a redirect loop.",
  truncated: "The body ended before its Content-Length or the connection was reset mid-body.",
  not_an_image: "The bytes are not a recognised image format.",
  unsupported_format: "A format the service refuses: SVG (it can carry scripts), HEIC/HEIF.",
  too_large: "The body exceeded MAX_IMAGE_BYTES.",
  too_many_pixels: "Width times height exceeds MAX_IMAGE_PIXELS.",
  storage_error: "The bytes could not be written to storage.",
  cancelled: "The job was cancelled (DELETE /jobs/{id}) before this URL was downloaded.",
  "http_<status>": "The origin answered with a non-2xx status, e.g. http_404.",
};

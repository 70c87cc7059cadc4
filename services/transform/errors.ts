/** A field that failed validation (the same shape the HTTP layer reports). */
export interface TransformFieldError {
  field: string;
  message: string;
}

/**
 * Why a transform was not made, in terms the HTTP layer maps to a status:
 * `invalid` parameters (400), a source this transform `cannot` apply to
 * (422), a `busy` pool (503, retry after `retryAfterS`), sharp
 * `unavailable` (501), or the source's bytes `missing` from storage (500).
 */
export type TransformErrorKind = "invalid" | "cannot" | "busy" | "unavailable" | "missing";

export class TransformError extends Error {
  constructor(
    readonly kind: TransformErrorKind,
    detail: string,
    readonly errors?: TransformFieldError[],
    readonly retryAfterS?: number,
  ) {
    super(detail);
  }
}

/** The one 400 for parameters that fail their checks. */
export const invalidParameters = (errors: TransformFieldError[]): TransformError =>
  new TransformError("invalid", "The transform parameters failed validation.", errors);

import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "@hono/zod-openapi";

/** One field that failed validation, in the service's own words. */
export interface FieldError {
  field: string;
  message: string;
}

/** RFC 9457 problem details, the one error shape of the service. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
}

const TITLES: Record<number, [slug: string, title: string]> = {
  400: ["bad-request", "Bad request"],
  404: ["not-found", "Not found"],
  405: ["method-not-allowed", "Method not allowed"],
  413: ["payload-too-large", "Request body too large"],
  415: ["unsupported-media-type", "Unsupported media type"],
  409: ["conflict", "Conflict"],
  416: ["range-not-satisfiable", "Range not satisfiable"],
  422: ["validation-error", "Invalid request"],
  500: ["internal-error", "Internal server error"],
  501: ["not-implemented", "Not implemented"],
  503: ["unavailable", "Service unavailable"],
};

export const problemType = (slug: string) => `urn:image-ingest:problem:${slug}`;

/** Raised by handlers and services' callers; turned into problem+json by `onError`. */
export class ProblemError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    detail: string,
    readonly errors?: FieldError[],
    readonly slug?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
  }
}

export function problemBody(
  status: number,
  detail: string,
  errors?: FieldError[],
  slug?: string,
): Problem {
  const [defSlug, title] = TITLES[status] ?? ["error", "Error"];
  return {
    type: problemType(slug ?? defSlug),
    title,
    status,
    detail,
    ...(errors ? { errors } : {}),
  };
}

/** A problem as a bare Response, for answers built outside Hono (the image bytes routes). */
export const problemAnswer = (err: ProblemError): Response =>
  new Response(JSON.stringify(problemBody(err.status, err.message, err.errors, err.slug)), {
    status: err.status,
    headers: { ...err.headers, "content-type": "application/problem+json" },
  });

export function problemResponse(
  c: Context,
  status: ContentfulStatusCode,
  detail: string,
  errors?: FieldError[],
  slug?: string,
  headers: Record<string, string> = {},
): Response {
  return c.body(JSON.stringify(problemBody(status, detail, errors, slug)), status, {
    ...headers,
    "content-type": "application/problem+json",
  });
}

/** Turns Zod issues into field errors, without Zod's internals. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.slice(0, 50).map((issue) => ({
    field: issue.path.length
      ? issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("")
        .replace(/^\./, "")
      : "(body)",
    message: describeIssue(issue),
  }));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined ? "is required" : `must be of type ${issue.expected}`;
    case "too_small":
      return issue.origin === "array"
        ? `must contain at least ${issue.minimum} entries`
        : `must be at least ${issue.minimum}`;
    case "too_big":
      return issue.origin === "array"
        ? `must contain at most ${issue.maximum} entries`
        : issue.origin === "string"
        ? `must be at most ${issue.maximum} characters`
        : `must be at most ${issue.maximum}`;
    case "unrecognized_keys":
      return `unknown field(s): ${issue.keys.join(", ")}`;
    case "invalid_value":
      return `must be one of: ${issue.values.map(String).join(", ")}`;
    default:
      return issue.message;
  }
}

/** The 404 for a URL with no stored image (content and metadata routes). */
export const notStored = (url: string): ProblemError =>
  new ProblemError(404, `No image is stored under the URL '${url}'.`);

/** The one 400 problem for input that fails its schema, wherever it was read. */
export function validationProblem(
  where: "query parameters" | "path parameters" | "request body",
  error: z.ZodError,
): ProblemError {
  return new ProblemError(
    400,
    `The ${where} failed validation.`,
    fieldErrors(error),
    "validation-error",
  );
}

/** The `defaultHook` for every route: validation failures become one 400 problem. */
export function validationHook(
  result: { success: boolean; error?: z.ZodError; target?: string },
  c: Context,
): Response | undefined {
  if (result.success || !result.error) return undefined;
  const where = result.target === "query"
    ? "query parameters"
    : result.target === "param"
    ? "path parameters"
    : "request body";
  const p = validationProblem(where, result.error);
  return problemResponse(c, p.status, p.message, p.errors, p.slug);
}

/** `onError`: known errors keep their status; anything else is a bare 500. */
export function errorHandler(err: Error, c: Context): Response {
  if (err instanceof ProblemError) {
    return problemResponse(c, err.status, err.message, err.errors, err.slug, err.headers);
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    return problemResponse(c, status, err.message || TITLES[status]?.[1] || "Error");
  }
  console.error(err);
  return problemResponse(c, 500, "The server could not complete the request.");
}

/** The Problem schema used in every error response of the contract. */
export const ProblemSchema = z.object({
  type: z.string().openapi({ example: problemType("validation-error") }),
  title: z.string().openapi({ example: "Invalid request" }),
  status: z.number().int().openapi({ example: 400 }),
  detail: z.string().openapi({ example: "The request body failed validation." }),
  errors: z.array(z.object({
    field: z.string().openapi({ example: "urls[3]" }),
    message: z.string().openapi({ example: "must be an absolute http or https URL" }),
  })).optional(),
}).openapi("Problem");

/** An error response entry for `createRoute({ responses })`. */
export const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});

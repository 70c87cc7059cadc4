/** Errors that end the CLI with exit code 2 and a one-line message. */

/** Wrong arguments or unreadable input. */
export class UsageError extends Error {}

/** The service could not be reached, or the connection was lost for good. */
export class ConnectionError extends Error {}

/** The service answered with an error status; `message` is its problem detail. */
export class ServiceError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

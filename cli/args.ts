/** The command line of `deno task ingest`, parsed with commander. */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

export type ListFormat = "csv" | "text";

export interface IngestOptions {
  /** A file path, or `-` for standard input. */
  input: string;
  /** The service's base URL, without a trailing slash. */
  server: string;
  /** Sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Where to write the results (CSV, or NDJSON when the name ends in `.ndjson`). */
  out?: string;
  /** Forces the list format instead of judging it from the name and content. */
  format?: ListFormat;
  refresh: boolean;
  /** How often plain progress lines are printed when stdout is not a terminal. */
  intervalMs: number;
}

/** What parsing decided: run with options, or stop now (help shown, or a usage error). */
export type ParsedArgs = { run: IngestOptions } | { exit: number };

export interface ArgsOutput {
  out(text: string): void;
  err(text: string): void;
}

function serverUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("not a URL.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError("must be an http or https URL.");
  }
  if (url.search || url.hash) throw new InvalidArgumentError("must not carry a query or fragment.");
  return url.href.replace(/\/+$/, "");
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a positive number.");
  return Math.round(n * 1000);
}

function program(output: ArgsOutput): Command {
  return new Command("ingest")
    .description(
      "Submit a list of image URLs (plain text, one per line, or CSV) to the ingestion service, " +
        "follow the job until it ends, and optionally save the results.",
    )
    .argument("<file>", "the list to submit, or - to read standard input")
    .addOption(
      new Option("--server <url>", "the service's base URL")
        .default("http://127.0.0.1:8000")
        .env("INGEST_SERVER")
        .argParser(serverUrl),
    )
    .addOption(
      new Option("--key <key>", "API key, sent as Authorization: Bearer <key>").env(
        "INGEST_API_KEY",
      ),
    )
    .option("--out <file>", "write the results here: CSV, or NDJSON when the name ends in .ndjson")
    .addOption(
      new Option(
        "--format <format>",
        "the list's format (default: from the file name, else the content)",
      )
        .choices(["csv", "text"]),
    )
    .option("--refresh", "ask origins again for URLs already stored")
    .addOption(
      new Option("--interval <seconds>", "seconds between progress lines when not on a terminal")
        .default(5_000, "5")
        .argParser(seconds),
    )
    .showHelpAfterError("(see ingest --help)")
    .configureOutput({ writeOut: output.out, writeErr: output.err })
    .exitOverride();
}

/**
 * Parses `argv` (the arguments after the task name). Usage errors are
 * written to `output.err` and map to exit code 2, the code this CLI uses
 * for every error that is not about the URLs themselves.
 */
export function parseArgs(argv: string[], output: ArgsOutput): ParsedArgs {
  const cmd = program(output);
  try {
    cmd.parse(argv, { from: "user" });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    return { exit: err.exitCode === 0 ? 0 : 2 };
  }
  const o = cmd.opts();
  return {
    run: {
      input: cmd.args[0],
      server: o.server,
      apiKey: o.key,
      out: o.out,
      format: o.format,
      refresh: o.refresh === true,
      intervalMs: o.interval,
    },
  };
}

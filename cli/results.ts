/** Saves a job's results file (streamed from the service) to disk. */
import type { ServiceClient } from "./api.ts";
import { ConnectionError, UsageError } from "./errors.ts";
import { userPath } from "./input.ts";

/** `.ndjson` names get NDJSON; everything else the CSV. */
export function resultsKind(path: string): "csv" | "ndjson" {
  return path.toLowerCase().endsWith(".ndjson") ? "ndjson" : "csv";
}

/**
 * Streams the results into a temporary file beside `path`, then renames it
 * over `path`: a download cut short never leaves a file that looks whole.
 */
export async function writeResults(client: ServiceClient, id: string, path: string): Promise<void> {
  const target = userPath(path);
  const res = await client.results(id, resultsKind(path));
  const temp = `${target}.part-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true }).catch((err) => {
      throw new UsageError(`cannot write ${path}: ${(err as Error).message}`);
    });
    try {
      await res.body!.pipeTo(file.writable);
    } catch (err) {
      if (err instanceof Deno.errors.PermissionDenied) throw err;
      throw new ConnectionError(`the results download broke off: ${(err as Error).message}`);
    }
    await Deno.rename(temp, target);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}

/** What the CLI says when the job has ended, and the exit code that goes with it. */
import { formatCount, formatDuration } from "./format.ts";
import type { FailedItem, JobSummary } from "./types.ts";

const EXAMPLES = 10;

/** Failed items as they are reported: counted by reason, the first few kept to show. */
export class FailureLog {
  readonly byReason = new Map<string, number>();
  readonly examples: FailedItem[] = [];
  // A resumed stream must not count an item twice.
  #seen = new Set<number>();

  add(item: FailedItem): void {
    if (this.#seen.has(item.index)) return;
    this.#seen.add(item.index);
    this.byReason.set(item.reason, (this.byReason.get(item.reason) ?? 0) + 1);
    if (this.examples.length < EXAMPLES) this.examples.push(item);
  }

  get size(): number {
    return this.#seen.size;
  }
}

/** 0 when every URL was stored, 1 otherwise (some failed, or the job was cancelled). */
export function exitCodeFor(job: JobSummary): 0 | 1 {
  return job.counts.complete === job.total ? 0 : 1;
}

/** How long the job ran by the service's clock, when it says. */
function jobSeconds(job: JobSummary): number | undefined {
  const ms = Date.parse(job.finished ?? "") - Date.parse(job.created ?? "");
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
}

export interface SummaryInput {
  job: JobSummary;
  failures: FailureLog;
  /** Time this run followed the job: shown when the job has no start and finish times. */
  elapsedSeconds: number;
  resultsPath?: string;
}

/** The closing lines. */
export function formatSummary(
  { job, failures, elapsedSeconds, resultsPath }: SummaryInput,
): string {
  const c = job.counts;
  const lines = [
    `Job ${job.id} ${job.status} in ${formatDuration(jobSeconds(job) ?? elapsedSeconds)}: ` +
    `${formatCount(c.complete)} of ${formatCount(job.total)} stored, ${
      formatCount(c.failed)
    } failed` +
    (c.pending > 0 ? `, ${formatCount(c.pending)} not done` : "") + ".",
  ];
  if (c.failed > 0 && failures.size > 0) {
    const reasons = [...failures.byReason].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const seen = failures.size < c.failed ? ` (of the ${formatCount(failures.size)} listed)` : "";
    lines.push(
      `Failed by reason${seen}: ` + reasons.map(([r, n]) => `${r} ${formatCount(n)}`).join(", "),
    );
    for (const f of failures.examples) lines.push(`  ${failureLine(f)}`);
    if (c.failed > failures.examples.length) {
      lines.push(
        `  ... ${formatCount(c.failed - failures.examples.length)} more` +
          (resultsPath ? ` in ${resultsPath}` : " (use --out to save every result)"),
      );
    }
  }
  if (resultsPath) lines.push(`Results written to ${resultsPath}`);
  return lines.join("\n");
}

/**
 * `line 3: not a url invalid_url (not an absolute URL)`. The input line
 * comes from `line`, else from a detail that starts `line N:` (as invalid
 * lines are reported), else the item's position is shown.
 */
export function failureLine(f: FailedItem): string {
  const inDetail = /^line (\d+): ?/.exec(f.detail ?? "");
  const line = f.line ?? (inDetail ? Number(inDetail[1]) : undefined);
  const where = line !== undefined ? `line ${line}` : `#${f.index + 1}`;
  const detail = inDetail ? f.detail!.slice(inDetail[0].length) : f.detail;
  return `${where}: ${f.url} ${f.reason}${detail ? ` (${detail})` : ""}`;
}

/**
 * `deno task fsck [--repair] [--json]`: checks that the URL index and blob
 * storage agree, with the service's own configuration. Exits 1 when they do
 * not (and --repair was not given).
 */
import { ConfigError, parseConfig } from "../services/config.ts";
import { fsck, isClean } from "../services/fsck.ts";
import { openService } from "../services/service.ts";

const repair = Deno.args.includes("--repair");
const asJson = Deno.args.includes("--json");
let config;
try {
  config = parseConfig(Deno.env.toObject());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  Deno.exit(2);
}
// The service's own parts, none started: the same code paths as the running service.
const service = await openService(config);
const report = await fsck(service, {
  repair,
  minOrphanAgeMs: Deno.args.includes("--all-orphans") ? 0 : undefined,
});
await service.close();

if (asJson) {
  console.log(JSON.stringify(report, null, 2));
} else {
  console.log(
    `index entries: ${report.indexEntries}, derivatives: ${report.derivatives}, ` +
      `blobs: ${report.blobs}`,
  );
  for (const e of report.brokenEntries) {
    console.log(
      `${repair ? "removed" : "broken"} index entry (${e.problem} blob ${e.sha256}): ${e.url}`,
    );
  }
  for (const d of report.strayDerivatives) {
    console.log(
      `${repair ? "removed" : "stray"} derivative (${d.problem}) ${d.paramsKey} of ${d.source}`,
    );
  }
  for (const c of report.countMismatches) {
    console.log(
      `${repair ? "fixed" : "wrong"} reference count of ${c.sha256}: ` +
        `${c.stored} stored, ${c.expected} referring`,
    );
  }
  for (const b of report.orphanBlobs) console.log(`${repair ? "deleted" : "orphan"} blob: ${b}`);
  if (report.queuedCollections) {
    console.log(`${report.queuedCollections} unreferenced blob(s) queued for collection`);
  }
  if (report.youngOrphans) {
    console.log(`${report.youngOrphans} unindexed blob(s) under 10 minutes old left alone`);
  }
  console.log(
    isClean(report) ? "storage and index agree" : repair ? "repaired" : "run with --repair to fix",
  );
}
Deno.exit(isClean(report) || repair ? 0 : 1);

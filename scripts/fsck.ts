/**
 * `deno task fsck [--repair] [--json]`: checks that the URL index and blob
 * storage agree, with the service's own configuration. Exits 1 when they do
 * not (and --repair was not given).
 */
import { DiskBlobStore } from "../services/blobs/disk_blob_store.ts";
import { ConfigError, parseConfig } from "../services/config.ts";
import { fsck, isClean } from "../services/fsck.ts";
import { ImagesRepo } from "../services/store/images_repo.ts";
import { keys } from "../services/store/kv_keys.ts";

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
const kv = await Deno.openKv(config.kvPath);
const report = await fsck(new ImagesRepo(kv, keys()), new DiskBlobStore(config.dataDir), {
  repair,
  minOrphanAgeMs: Deno.args.includes("--all-orphans") ? 0 : undefined,
});
kv.close();

if (asJson) {
  console.log(JSON.stringify(report, null, 2));
} else {
  console.log(`index entries: ${report.indexEntries}, blobs: ${report.blobs}`);
  for (const e of report.brokenEntries) {
    console.log(
      `${repair ? "removed" : "broken"} index entry (${e.problem} blob ${e.sha256}): ${e.url}`,
    );
  }
  for (const b of report.orphanBlobs) console.log(`${repair ? "deleted" : "orphan"} blob: ${b}`);
  if (report.youngOrphans) {
    console.log(`${report.youngOrphans} unindexed blob(s) under 10 minutes old left alone`);
  }
  console.log(
    isClean(report) ? "storage and index agree" : repair ? "repaired" : "run with --repair to fix",
  );
}
Deno.exit(isClean(report) || repair ? 0 : 1);

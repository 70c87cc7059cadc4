/**
 * Keeping one timed run from paying for another's file work (see bench/README.md): on this VM's
 * journal-less ext4, creating files right after thousands were deleted is slow, and a run's dirty
 * pages would otherwise be written back during the next one.
 */
import type { Resources } from "./proc.ts";

/** Flushes dirty pages (outside any timed window). */
export async function syncDisk(): Promise<void> {
  await new Deno.Command("sync").output().catch(() => {});
}

/**
 * Before the first timed run of a benchmark: flush, then let the kernel's "recently deleted"
 * window (about 5 s) pass for files an earlier benchmark removed.
 */
export async function settleDisk(): Promise<void> {
  await syncDisk();
  await new Promise((r) => setTimeout(r, 5_000));
}

/** Directories of finished runs, kept until every timed run of a benchmark is over. */
export class Leftovers {
  readonly #dirs: string[] = [];
  readonly #res: Resources;

  constructor(res: Resources) {
    this.#res = res;
  }

  keep(dir: string): void {
    this.#dirs.push(dir);
  }

  async removeAll(): Promise<void> {
    for (const dir of this.#dirs.splice(0)) await this.#res.removeDir(dir);
  }
}

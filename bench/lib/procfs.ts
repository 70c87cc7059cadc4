/**
 * What /proc says about a child process. Deno refuses /proc reads without --allow-all, which the
 * bench does not take, so `cat` reads the files.
 */

async function readProc(pid: number, file: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("cat", {
      args: [`/proc/${pid}/${file}`],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null;
  }
}

let clockTicks: number | undefined;

/**
 * CPU time (user + system) a live process has used so far, all its threads included (the
 * process's own stat line sums them); null where unknown.
 */
export async function cpuMs(pid: number): Promise<number | null> {
  if (clockTicks === undefined) {
    try {
      const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" })
        .output();
      clockTicks = Number(new TextDecoder().decode(out.stdout).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  const stat = await readProc(pid, "stat");
  if (stat === null) return null;
  // The command name may contain spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
  return ((Number(fields[11]) + Number(fields[12])) / clockTicks) * 1000;
}

/** The argv of a live process, to check that a pid is the process one means. */
export async function cmdline(pid: number): Promise<string[] | null> {
  const text = await readProc(pid, "cmdline");
  return text === null ? null : text.split("\0").filter((a) => a !== "");
}

/**
 * `kB` fields of /proc/<pid>/status (VmHWM = peak resident set, VmRSS = now, RssAnon, RssFile,
 * RssShmem) and of /proc/<pid>/smaps_rollup (Rss split by kind), in bytes.
 */
export async function memoryBytes(
  pid: number,
  file: "status" | "smaps_rollup" = "status",
): Promise<Record<string, number> | null> {
  const text = await readProc(pid, file);
  if (text === null) return null;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]] = Number(m[2]) * 1024;
  return out;
}

export interface RssWatch {
  /** Stops sampling; the highest VmRSS seen, when it was seen (ms after the start), and all samples. */
  stop(): Promise<{ maxBytes: number; atMs: number; samples: [number, number][] }>;
}

/**
 * Samples a process's VmRSS every `everyMs`, to show when memory grows (VmHWM gives only the
 * peak). Sampling misses short spikes; VmHWM does not.
 */
export function watchRss(pid: number, everyMs: number): RssWatch {
  const t0 = performance.now();
  const samples: [number, number][] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const rss = (await memoryBytes(pid))?.VmRSS;
      if (rss !== undefined) samples.push([Math.round(performance.now() - t0), rss]);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      let max: [number, number] = [0, 0];
      for (const s of samples) if (s[1] > max[1]) max = s;
      return { maxBytes: max[1], atMs: max[0], samples };
    },
  };
}

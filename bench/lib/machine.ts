/** What the benchmarks ran on. */

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  deno: string;
  v8: string;
  typescript: string;
  wrk: string;
}

async function nproc(): Promise<number> {
  try {
    const out = await new Deno.Command("nproc", { stdout: "piped" }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    if (Number.isInteger(n) && n > 0) return n;
  } catch {
    // fall through
  }
  return navigator.hardwareConcurrency;
}

async function cpuModel(): Promise<string> {
  try {
    // Deno refuses /proc reads without --allow-all; cat may read it.
    const out = await new Deno.Command("cat", { args: ["/proc/cpuinfo"], stdout: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stdout);
    return /model name\s*:\s*(.+)/.exec(text)?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

export async function machineInfo(wrkVersion: string): Promise<MachineInfo> {
  return {
    nproc: await nproc(),
    cpuModel: await cpuModel(),
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 1024 ** 3),
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    wrk: wrkVersion,
  };
}

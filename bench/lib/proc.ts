/**
 * Child processes and temporary directories for the benchmarks, all tracked so they are removed
 * even when a benchmark fails or the run is interrupted. Every child listens on 127.0.0.1 only.
 */

/** The repository root (bench/lib/ is two levels down). */
export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** Gitignored output: results, logs, cached fixtures. */
export const OUT = `${ROOT}/bench/.out`;
export const LOG_DIR = `${OUT}/logs`;

/** The permissions `deno task start` gives the service (plus --unstable-kv and --allow-sys, as the tests use). */
export const SERVICE_ARGS = [
  "run",
  "--unstable-kv",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  // sharp's native addon (image transforms), as `deno task start` gives it.
  "--allow-ffi",
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each service run there.
  ...(Deno.env.get("BENCH_CPU_PROF")
    ? ["--cpu-prof", `--cpu-prof-dir=${Deno.env.get("BENCH_CPU_PROF")}`]
    : []),
  "main.ts",
];

/** Environment variables passed through to children; everything else is set explicitly. */
const PASS_ENV = ["PATH", "HOME", "USER", "LANG", "TMPDIR", "DENO_DIR", "XDG_CACHE_HOME"];

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of PASS_ENV) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export interface Managed {
  name: string;
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  exited: boolean;
  logPath: string;
}

export interface Listening extends Managed {
  /** `http://127.0.0.1:PORT` */
  base: string;
  port: number;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Races `p` against a timer that is always cleared. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Tracks what a run creates; `cleanup()` stops every child and removes every temp dir. */
export class Resources {
  readonly #children = new Set<Managed>();
  readonly #dirs = new Set<string>();
  #logSeq = 0;

  /** A new temporary directory (under `parent`, else the OS temp dir), removed by cleanup(). */
  async tempDir(prefix: string, parent?: string): Promise<string> {
    const dir = await Deno.makeTempDir({ prefix: `image-ingest-bench-${prefix}-`, dir: parent });
    this.#dirs.add(dir);
    return dir;
  }

  /**
   * A new temporary directory on tmpfs (/dev/shm), or null where there is none. Deno refuses
   * /dev paths without --allow-all, so mktemp makes it (and rm removes it).
   */
  async tmpfsDir(prefix: string): Promise<string | null> {
    try {
      const fs = await new Deno.Command("stat", {
        args: ["-f", "-c", "%T", "/dev/shm"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (new TextDecoder().decode(fs.stdout).trim() !== "tmpfs") return null;
      const out = await new Deno.Command("mktemp", {
        args: ["-d", "-p", "/dev/shm", `image-ingest-bench-${prefix}-XXXXXX`],
        stdout: "piped",
        stderr: "null",
      }).output();
      const dir = new TextDecoder().decode(out.stdout).trim();
      if (!out.success || !dir.startsWith("/dev/shm/image-ingest-bench-")) return null;
      this.#dirs.add(dir);
      return dir;
    } catch {
      return null;
    }
  }

  async removeDir(dir: string): Promise<void> {
    this.#dirs.delete(dir);
    if (dir.startsWith("/dev/shm/image-ingest-bench-")) {
      await new Deno.Command("rm", { args: ["-rf", "--", dir] }).output().catch(() => {});
      return;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  /**
   * Spawns a Deno child in the repository root with a clean environment plus `env`. Its stderr
   * (and stdout, unless the caller reads it) go to a log file under bench/.out/logs/.
   */
  async spawnDeno(
    name: string,
    args: string[],
    env: Record<string, string>,
    stdout: "piped" | "log",
  ): Promise<Managed> {
    await Deno.mkdir(LOG_DIR, { recursive: true });
    const logPath = `${LOG_DIR}/${String(++this.#logSeq).padStart(2, "0")}-${name}.log`;
    const log = await Deno.open(logPath, { write: true, create: true, truncate: true });
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      clearEnv: true,
      env: { ...baseEnv(), ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const managed: Managed = { name, child, status: child.status, exited: false, logPath };
    this.#children.add(managed);
    const writer = log.writable.getWriter();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) await writer.write(chunk);
    };
    const pumps = [pump(child.stderr)];
    if (stdout === "log") pumps.push(pump(child.stdout));
    Promise.allSettled(pumps).then(() => writer.close()).catch(() => {});
    managed.status = child.status.finally(() => {
      managed.exited = true;
    });
    return managed;
  }

  /**
   * Spawns a child that prints `listening on http://127.0.0.1:PORT` on stdout and waits for that
   * line (the rest of stdout is logged).
   */
  async spawnListening(
    name: string,
    args: string[],
    env: Record<string, string>,
    timeoutMs = 60_000,
  ): Promise<Listening> {
    const m = await this.spawnDeno(name, args, env, "piped");
    const reader = m.child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const wait = (async () => {
      for (;;) {
        const match = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(seen);
        if (match) return { base: match[1], port: Number(match[2]) };
        const { value, done } = await reader.read();
        if (done) throw new Error(`${name} exited before listening`);
        seen += value;
      }
    })();
    let found: { base: string; port: number };
    try {
      found = await withTimeout(wait, timeoutMs, `${name} to listen`);
    } catch (err) {
      await this.stop(m);
      const tail = await Deno.readTextFile(m.logPath).catch(() => "");
      throw new Error(`${(err as Error).message}\n--- ${m.logPath} ---\n${tail.slice(-3000)}`);
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    (async () => {
      const file = await Deno.open(m.logPath, { append: true });
      const enc = new TextEncoder();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          await file.write(enc.encode(value));
        }
      } finally {
        file.close();
      }
    })().catch(() => {});
    return { ...m, ...found };
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
  async stop(m: Managed, graceMs = 4000): Promise<void> {
    this.#children.delete(m);
    if (m.exited) return;
    try {
      m.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const exited = await Promise.race([
      m.status.then(() => true),
      sleep(graceMs).then(() => false),
    ]);
    if (!exited) {
      try {
        m.child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await withTimeout(m.status, 5000, `${m.name} to die`).catch(() => {});
    }
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.#children].map((m) => this.stop(m)));
    await Promise.all([...this.#dirs].map((d) => this.removeDir(d)));
  }
}

/** Runs a Deno script to completion and parses the last stdout line as JSON. */
export async function runDenoJson<T>(
  res: Resources,
  name: string,
  args: string[],
  timeoutMs: number,
): Promise<T> {
  const m = await res.spawnDeno(name, args, {}, "piped");
  const text = withTimeout(new Response(m.child.stdout).text(), timeoutMs, name);
  let out: string;
  try {
    out = await text;
  } catch (err) {
    await res.stop(m);
    throw err;
  }
  const status = await m.status;
  await res.stop(m);
  if (!status.success) {
    const log = await Deno.readTextFile(m.logPath).catch(() => "");
    throw new Error(`${name} failed (exit ${status.code})\n${log.slice(-3000)}`);
  }
  const last = out.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last) as T;
}

/**
 * Starts the service (main.ts) with exactly these settings on a free loopback port. `allowAll`
 * (only for a DATA_DIR under /dev, which Deno refuses otherwise) replaces the permission list.
 */
export function spawnService(
  res: Resources,
  name: string,
  env: Record<string, string>,
  opts: { allowAll?: boolean } = {},
): Promise<Listening> {
  const args = opts.allowAll
    ? ["run", "--unstable-kv", "--allow-all", SERVICE_ARGS.at(-1)!]
    : SERVICE_ARGS;
  return res.spawnListening(name, args, { PORT: "0", HOSTNAME: "127.0.0.1", ...env });
}

/** Starts a plain Deno.serve (own process) answering every GET with one file's bytes from memory. */
export function spawnStaticOne(res: Resources, name: string, file: string): Promise<Listening> {
  return res.spawnListening(name, [
    "run",
    "--allow-net=127.0.0.1",
    `--allow-read=${file}`,
    "bench/children/static_one.ts",
    file,
  ], {});
}

/** Options of bench/children/origin.ts; see its header. */
export interface OriginOptions {
  /** Send every body at this many bytes per second (per connection). */
  throttleBytesPerSec?: number;
  /** Also serve this directory's files at /stream/<name>, read from disk per request. */
  streamDir?: string;
}

/** Starts the static origin (a separate Deno process) serving the fixture directory from memory. */
export function spawnOrigin(
  res: Resources,
  name: string,
  fixtureDir: string,
  opts: OriginOptions = {},
): Promise<Listening> {
  const readable = [fixtureDir, ...(opts.streamDir ? [opts.streamDir] : [])];
  return res.spawnListening(name, [
    "run",
    "--allow-net=127.0.0.1",
    `--allow-read=${readable.join(",")}`,
    "bench/children/origin.ts",
    fixtureDir,
    ...(opts.throttleBytesPerSec ? [`--throttle=${opts.throttleBytesPerSec}`] : []),
    ...(opts.streamDir ? [`--stream=${opts.streamDir}`] : []),
  ], {});
}

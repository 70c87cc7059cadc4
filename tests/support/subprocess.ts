/** Runs the real service (`main.ts`) as a child process, as operators do. */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const FSCK = new URL("../../scripts/fsck.ts", import.meta.url).pathname;
const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];

export interface ServiceProcess {
  base: string;
  child: Deno.ChildProcess;
  /** Resolves with the exit status; output is drained so the child never blocks. */
  exited: Promise<Deno.CommandStatus>;
}

/** Starts the service on a free loopback port and waits until it listens. */
export async function spawnService(env: Record<string, string>): Promise<ServiceProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-kv", ...PERMISSIONS, MAIN],
    env: { PORT: "0", HOSTNAME: "127.0.0.1", ...env },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let base: string | undefined;
  while (!base) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`service exited before listening: ${seen}`);
    seen += value;
    base = /listening on (http:\/\/\S+)/.exec(seen)?.[1];
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done);
  })().catch(() => {});
  return { base, child, exited: child.status };
}

/** Runs `scripts/fsck.ts` with the given environment and returns its JSON report and exit code. */
export async function runFsck(env: Record<string, string>, args: string[] = []) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-kv", ...PERMISSIONS, FSCK, "--json", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return { code: out.code, report: JSON.parse(text), stderr: new TextDecoder().decode(out.stderr) };
}

/**
 * `deno task ingest` end to end: the real service as a process on a loopback
 * port with a temp DATA_DIR, a loopback image origin, and the CLI run the
 * way a user runs it (through the task, from another directory, stdout a
 * pipe so it prints plain progress lines).
 */
import assert from "node:assert/strict";
import { type ImageOrigin, startImageOrigin, waitFor } from "./support/image_origin.ts";
import { makeImage } from "./support/images.ts";
import { type ServiceProcess, spawnService } from "./support/subprocess.ts";

const CONFIG = new URL("../deno.json", import.meta.url).pathname;

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno task ingest ...` in `cwd`, stdout and stderr piped (not a terminal). */
function ingest(args: string[], opts: { cwd: string; stdin?: string }): Promise<CliRun> {
  return startIngest(args, opts).done;
}

/** Starts `deno task ingest ...`; `done` resolves when it exits. */
function startIngest(
  args: string[],
  opts: { cwd: string; stdin?: string },
): { done: Promise<CliRun> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "--config", CONFIG, "ingest", ...args],
    cwd: opts.cwd,
    // A user's shell, not this test's: `deno task test` leaves INIT_CWD set,
    // and a nested `deno task` keeps it, which would hide where the CLI
    // resolves relative paths from.
    clearEnv: true,
    env: {
      ...pick(Deno.env.toObject(), ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]),
      NO_COLOR: "1",
    },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const done = (async () => {
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    }
    const out = await child.output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  })();
  return { done };
}

function pick(env: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(names.filter((n) => n in env).map((n) => [n, env[n]]));
}

interface World {
  origin: ImageOrigin;
  service: ServiceProcess;
  /** A fresh directory the CLI runs in; input and output files go here. */
  dir: string;
  job(id: string): Promise<Record<string, any>>;
}

/** A service and an origin with `n` slow-ish images at /img/<i>.png, torn down after `fn`. */
async function withWorld(n: number, fn: (w: World) => Promise<void>): Promise<void> {
  const origin = startImageOrigin();
  for (let i = 0; i < n; i++) {
    const body = await makeImage("png", { width: 4 + i, height: 3, seed: i });
    origin.set(`/img/${i}.png`, { body, delayMs: 150 });
  }
  const dataDir = await Deno.makeTempDir({ prefix: "image-ingest-cli-data-" });
  const dir = await Deno.makeTempDir({ prefix: "image-ingest-cli-run-" });
  const service = await spawnService({
    DATA_DIR: dataDir,
    FETCH_ALLOW_HOSTS: origin.allowRule,
    WORKER_CONCURRENCY: "2",
    PER_HOST_CONCURRENCY: "2",
    FETCH_RETRIES: "0",
  });
  try {
    await fn({
      origin,
      service,
      dir,
      job: async (id) => await (await fetch(`${service.base}/jobs/${id}`)).json(),
    });
  } finally {
    service.child.kill("SIGTERM");
    await service.exited;
    await origin.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function progressLines(stdout: string): string[] {
  return stdout.split("\n").filter((l) => l.startsWith("progress: "));
}

function jobId(stdout: string): string {
  const id = /^Job (\S+): /m.exec(stdout)?.[1];
  assert.ok(id, `a job line in:\n${stdout}`);
  return id;
}

Deno.test({
  name: "ingest exits 0 when every URL is stored, with periodic progress lines and a summary",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWorld(8, async ({ origin, service, dir, job }) => {
      const urls = Array.from({ length: 8 }, (_, i) => origin.url(`/img/${i}.png`));
      await Deno.writeTextFile(`${dir}/urls.txt`, `# eight images\n${urls.join("\n")}\n`);
      const run = await ingest(["urls.txt", "--server", service.base, "--interval", "0.1"], {
        cwd: dir,
      });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const id = jobId(run.stdout);
      assert.match(
        run.stdout,
        /^Job \S+: 8 URLs from urls\.txt \(text\) at http:\/\/127\.0\.0\.1:/m,
      );

      // 8 downloads of 150 ms two at a time take about 0.6 s: lines every 0.1 s show it moving.
      const lines = progressLines(run.stdout);
      assert.ok(lines.length >= 3, `several progress lines:\n${run.stdout}`);
      const done = lines.map((l) => Number(/^progress: (\d+)\/8 done/.exec(l)?.[1]));
      assert.ok(done.every((d) => Number.isInteger(d)), lines.join("\n"));
      assert.deepEqual(done, [...done].sort((a, b) => a - b), "never goes backwards");
      assert.equal(lines.at(-1)!.split(",")[0], "progress: 8/8 done (100%)");
      assert.match(lines.at(-1)!, /, 0 failed, [\d.]+\/s, ETA 0s$/);
      assert.ok(!run.stdout.includes("\x1b["), "no terminal control codes in a pipe");

      assert.match(
        run.stdout,
        new RegExp(`Job ${id} complete in \\d+s: 8 of 8 stored, 0 failed\\.`),
      );
      const server = await job(id);
      assert.equal(server.status, "complete");
      assert.deepEqual(server.counts, { pending: 0, complete: 8, failed: 0 });
      for (let i = 0; i < 8; i++) assert.equal(origin.hits(`/img/${i}.png`), 1);
    }),
});

const SCRIPT = ["/usr/bin/script", "/bin/script"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
if (!SCRIPT) {
  console.warn("cli_test.ts: no `script` (util-linux): the terminal bar case is ignored");
}

Deno.test({
  name: "ingest draws a redrawn progress bar when stdout is a terminal",
  ignore: !SCRIPT,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWorld(4, async ({ origin, service, dir }) => {
      const urls = [0, 1, 2, 3].map((i) => origin.url(`/img/${i}.png`));
      await Deno.writeTextFile(`${dir}/urls.txt`, urls.join("\n") + "\n");
      // `script` runs the command on a pseudo-terminal and copies what it draws.
      const command = [Deno.execPath(), "task", "--quiet", "--config", CONFIG, "ingest", "urls.txt"]
        .concat(["--server", service.base]).map((a) => `'${a}'`).join(" ");
      const out = await new Deno.Command(SCRIPT!, {
        args: ["-q", "-e", "-c", command, "/dev/null"],
        cwd: dir,
        clearEnv: true,
        env: { ...pick(Deno.env.toObject(), ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const screen = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, screen);
      assert.match(screen, /\u2588+\u2591* \d+% \| \d\/4 \| 0 failed \| /, "a bar with counts");
      assert.match(screen, /\u2588{30} 100% \| 4\/4 \| 0 failed \| [\d.]+\/s \| ETA 0s/);
      assert.ok(screen.includes("\x1b[1G") || screen.includes("\r"), "redrawn in place");
      assert.equal(progressLines(screen).length, 0, "no plain lines on a terminal");
      assert.match(screen, /4 of 4 stored, 0 failed\./);
    }),
});

Deno.test({
  name: "ingest exits 1 when some URLs failed and names them with their reason",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWorld(2, async ({ origin, service, dir }) => {
      const list = [origin.url("/img/0.png"), origin.url("/gone.png"), origin.url("/img/1.png")];
      await Deno.writeTextFile(`${dir}/list`, list.join("\n"));
      const run = await ingest(["list", "--server", service.base], { cwd: dir });
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stdout, /complete in \d+s: 2 of 3 stored, 1 failed\./);
      assert.match(run.stdout, /^Failed by reason: http_404 1$/m);
      // `line 2` when the service reports input lines, else the position.
      assert.match(
        run.stdout,
        new RegExp(`^ {2}(line 2|#2): ${origin.url("/gone.png")} http_404`, "m"),
      );
    }),
});

Deno.test({
  name: "ingest exits 2 on usage errors, a refused list and an unreachable service",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWorld(0, async ({ service, dir }) => {
      const noArgs = await ingest([], { cwd: dir });
      assert.equal(noArgs.code, 2);
      assert.match(noArgs.stderr, /missing required argument 'file'/);

      const missing = await ingest(["nowhere.txt", "--server", service.base], { cwd: dir });
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read nowhere\.txt: no such file/);

      const empty = await ingest(["-", "--server", service.base], { cwd: dir, stdin: "\n\n" });
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /standard input is empty/);

      const badOut = await ingest(["-", "--server", service.base, "--out", "no/dir/r.csv"], {
        cwd: dir,
        stdin: "http://127.0.0.1:1/a.png\n",
      });
      assert.equal(badOut.code, 2);
      assert.match(badOut.stderr, /--out no\/dir\/r\.csv: no directory/);

      // Not one valid URL: the service answers 400, the CLI shows its detail.
      const refused = await ingest(["-", "--server", service.base], {
        cwd: dir,
        stdin: "ftp://example.invalid/a.png\n",
      });
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /^ingest: the service answered 400: \S/m);

      // A loopback port nobody listens on (bound, noted, released).
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const down = await ingest(["-", "--server", `http://127.0.0.1:${port}`], {
        cwd: dir,
        stdin: "http://127.0.0.1:1/a.png\n",
      });
      assert.equal(down.code, 2);
      assert.match(down.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}`));
      assert.equal(down.stdout, "", "nothing on stdout when no job was made");
    }),
});

Deno.test({
  name: "ingest reads CSV from stdin and writes the results file (CSV, and NDJSON by name)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWorld(2, async ({ origin, service, dir }) => {
      const csv = `sku,url\nA1,${origin.url("/img/1.png")}\nB2,${origin.url("/missing.png")}\n` +
        `C3,${origin.url("/img/0.png")}\n`;
      const run = await ingest(["-", "--server", service.base, "--out", "results.csv"], {
        cwd: dir,
        stdin: csv,
      });
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stdout, /\(csv\)/);
      assert.match(run.stdout, /Results written to results\.csv/);
      const rows = (await Deno.readTextFile(`${dir}/results.csv`)).trim().split(/\r?\n/);
      // The input's own columns (its url among them) come first, then the service's.
      assert.equal(
        rows[0],
        "sku,url,url,status,reason,attempts,content_url,sha256,content_type,bytes,width,height",
      );
      assert.deepEqual(rows.slice(1).map((r) => r.split(",").slice(0, 5)), [
        ["A1", origin.url("/img/1.png"), origin.url("/img/1.png"), "complete", ""],
        ["B2", origin.url("/missing.png"), origin.url("/missing.png"), "failed", "http_404"],
        ["C3", origin.url("/img/0.png"), origin.url("/img/0.png"), "complete", ""],
      ]);
      assert.deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes(".part")),
        [],
      );

      // The same list again: the same job (idempotency), its results as NDJSON.
      const again = await ingest(["-", "--server", service.base, "--out", "r.ndjson"], {
        cwd: dir,
        stdin: csv,
      });
      assert.equal(again.code, 1);
      const items = (await Deno.readTextFile(`${dir}/r.ndjson`)).trim().split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(items.map((i) => i.url), [
        origin.url("/img/1.png"),
        origin.url("/missing.png"),
        origin.url("/img/0.png"),
      ]);
    }),
});

Deno.test({
  name: "ingest run twice on the same list follows the same job instead of making a second",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWorld(3, async ({ origin, service, dir }) => {
      const list = [0, 1, 2].map((i) => origin.url(`/img/${i}.png`)).join("\n") + "\n";
      await Deno.writeTextFile(`${dir}/a.txt`, list);
      const first = await ingest(["a.txt", "--server", service.base], { cwd: dir });
      const second = await ingest(["a.txt", "--server", service.base], { cwd: dir });
      assert.equal(first.code, 0, first.stderr);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(jobId(second.stdout), jobId(first.stdout));
      for (let i = 0; i < 3; i++) assert.equal(origin.hits(`/img/${i}.png`), 1);
      // A different list is a different job.
      await Deno.writeTextFile(`${dir}/b.txt`, list + origin.url("/img/0.png?v=2") + "\n");
      const third = await ingest(["b.txt", "--server", service.base], { cwd: dir });
      assert.notEqual(jobId(third.stdout), jobId(first.stdout));
    }),
});

Deno.test({
  name: "ingest counts invalid lines as failures and shows their line numbers",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWorld(2, async ({ origin, service, dir }) => {
      const list = `# two images and a typo\n${origin.url("/img/0.png")}\nnot a url\n` +
        `${origin.url("/img/1.png")}\n`;
      await Deno.writeTextFile(`${dir}/mixed.txt`, list);
      const run = await ingest(["mixed.txt", "--server", service.base], { cwd: dir });
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stdout, /2 of 3 stored, 1 failed/);
      assert.match(run.stdout, /^Failed by reason: invalid_url 1$/m);
      assert.match(run.stdout, /^ {2}line 3: not a url invalid_url/m);
    }),
});

Deno.test({
  name: "ingest follows the job's event stream, not polling, to the last progress line",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withWorld(6, async ({ origin, service, dir }) => {
      const list = [0, 1, 2, 3, 4, 5].map((i) => origin.url(`/img/${i}.png`)).join("\n");
      await Deno.writeTextFile(`${dir}/six.txt`, `${list}\n${origin.url("/nope.png")}\n`);
      const run = await ingest(["six.txt", "--server", service.base, "--interval", "0.1"], {
        cwd: dir,
      });
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.doesNotMatch(run.stderr, /polling/, "the event stream was used");
      const lines = progressLines(run.stdout);
      assert.ok(lines.length >= 3, run.stdout);
      assert.equal(lines.at(-1)!.split(",")[0], "progress: 7/7 done (100%)");
      // The failure came as a `failed` event, with its input line.
      assert.match(run.stdout, new RegExp(`^ {2}line 7: ${origin.url("/nope.png")} http_404`, "m"));
    }),
});

Deno.test({
  name: "ingest rides out a service restart mid-job and still ends with every URL stored",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const origin = startImageOrigin();
    const urls: string[] = [];
    for (let i = 0; i < 12; i++) {
      origin.set(`/r/${i}.png`, {
        body: await makeImage("png", { width: 5 + i, height: 4, seed: 100 + i }),
        delayMs: 200,
      });
      urls.push(origin.url(`/r/${i}.png`));
    }
    const dataDir = await Deno.makeTempDir({ prefix: "image-ingest-cli-data-" });
    const dir = await Deno.makeTempDir({ prefix: "image-ingest-cli-run-" });
    const env = {
      DATA_DIR: dataDir,
      FETCH_ALLOW_HOSTS: origin.allowRule,
      WORKER_CONCURRENCY: "2",
      PER_HOST_CONCURRENCY: "2",
      LEASE_MS: "1000",
      SWEEP_INTERVAL_MS: "200",
    };
    let service = await spawnService(env);
    try {
      await Deno.writeTextFile(`${dir}/urls.txt`, urls.join("\n") + "\n");
      const cli = startIngest(["urls.txt", "--server", service.base, "--interval", "0.1"], {
        cwd: dir,
      });
      await waitFor(() => origin.totalHits() >= 3, "downloads under way");
      service.child.kill("SIGKILL");
      await service.exited;
      // Same port, same data: to the CLI it is the same service, gone for a moment.
      service = await spawnService({ ...env, PORT: new URL(service.base).port });
      const run = await cli.done;
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /12 of 12 stored, 0 failed\./);
      // With the events route, the stream was picked up again on the new process.
      assert.doesNotMatch(run.stderr, /polling/);
      assert.equal(progressLines(run.stdout).at(-1)!.split(",")[0], "progress: 12/12 done (100%)");
    } finally {
      service.child.kill("SIGTERM");
      await service.exited;
      await origin.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

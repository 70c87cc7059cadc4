/** Runs wrk (HTTP load generator) against a loopback URL and parses its report. */

export interface WrkResult {
  url: string;
  args: string[];
  requests: number;
  durationS: number;
  reqPerSec: number;
  transferBytesPerSec: number;
  latencyMs: { avg: number; p50: number; p75: number; p90: number; p99: number; max: number };
  non2xx: number;
  socketErrors: number;
}

const WRK = "wrk";

/** Throws with an install hint when wrk is missing. */
export async function checkWrk(): Promise<string> {
  try {
    const out = await new Deno.Command(WRK, { args: ["-v"], stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return text.split("\n")[0].trim();
  } catch {
    throw new Error("wrk is not installed (Debian/Ubuntu: apt-get install wrk)");
  }
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case "us":
      return v / 1000;
    case "ms":
      return v;
    case "s":
      return v * 1000;
    case "m":
      return v * 60_000;
    default:
      return NaN;
  }
}

function toBytes(value: string, unit: string): number {
  const scale: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
  return Number(value) * (scale[unit] ?? NaN);
}

export function parseWrk(text: string): Omit<WrkResult, "url" | "args"> {
  const lat = /Latency\s+([\d.]+)(us|ms|s|m)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m)/.exec(text);
  const dist = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s|m)`).exec(text);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const reqs = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const tps = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (!rps || !reqs) throw new Error(`cannot parse wrk output:\n${text}`);
  return {
    requests: Number(reqs[1]),
    durationS: toMs(reqs[2], reqs[3]) / 1000,
    reqPerSec: Number(rps[1]),
    transferBytesPerSec: tps ? toBytes(tps[1], tps[2]) : NaN,
    latencyMs: {
      avg: lat ? toMs(lat[1], lat[2]) : NaN,
      max: lat ? toMs(lat[3], lat[4]) : NaN,
      p50: dist("50"),
      p75: dist("75"),
      p90: dist("90"),
      p99: dist("99"),
    },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

/** One wrk run; `url` must be a loopback URL. wrk stops by itself after `durationS`. */
export async function runWrk(
  url: string,
  opts: { threads: number; connections: number; durationS: number },
): Promise<WrkResult> {
  const host = new URL(url).hostname;
  if (host !== "127.0.0.1" && host !== "[::1]") throw new Error(`not a loopback URL: ${url}`);
  const args = [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    "--timeout",
    "5s",
    "--latency",
    url,
  ];
  const out = await new Deno.Command(WRK, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}\n${text}`);
  }
  return { url, args, ...parseWrk(text) };
}

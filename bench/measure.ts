import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One run of a command: wall time and peak resident memory. */
export interface Sample {
  ms: number;
  rssMb: number;
  code: number;
}

/** Runs a command under GNU time, returning wall time and peak RSS; `okCodes` are accepted exit codes. */
export async function measure(
  command: string,
  args: readonly string[],
  okCodes: readonly number[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Sample> {
  const rssFile = join(tmpdir(), `sluice-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const start = performance.now();
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn("/usr/bin/time", ["-f", "%M", "-o", rssFile, command, ...args], { stdio: ["ignore", "ignore", "pipe"], env });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (c) => {
      if (c !== null && okCodes.includes(c)) resolve(c);
      else reject(new Error(`${command} ${args.join(" ")} exited ${String(c)}: ${stderr.slice(0, 2000)}`));
    });
  });
  const ms = performance.now() - start;
  const text = await readFile(rssFile, "utf8");
  await rm(rssFile, { force: true });
  const kb = Number(text.trim().split("\n").at(-1));
  return { ms, rssMb: kb / 1024, code };
}

/** The median of some numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../src/cli/sluice.ts", import.meta.url));
/** The built command line, as the image runs it (after `npm run build`). */
export const BUILT_CLI = fileURLToPath(new URL("../../bin/sluice.js", import.meta.url));

/** `sluice app` or `sluice agent` running as a process of its own, with its output kept. */
export interface SluiceProcess {
  child: ChildProcess;
  /** Everything it wrote to stderr and stdout so far. */
  output: () => string;
  /** SIGTERM, then SIGKILL after 15 s; resolves when it has exited. */
  stop: () => Promise<void>;
}

/**
 * Starts the command line (`node src/cli/sluice.ts <command>`, the same modules the built
 * `bin/sluice.js` runs, which `built` runs instead) with exactly `env` as its environment, and
 * waits until `ready` matches its output.
 */
export async function startSluice(
  command: "app" | "agent",
  env: Record<string, string>,
  ready: RegExp,
  options: { cwd?: string; built?: boolean } = {},
): Promise<SluiceProcess> {
  const child = spawn(process.execPath, [options.built ? BUILT_CLI : CLI, command], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    cwd: options.cwd ?? fileURLToPath(new URL("../../", import.meta.url)),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      resolve();
    });
  });
  const deadline = Date.now() + 60_000;
  while (!ready.test(output)) {
    if (child.exitCode !== null) throw new Error(`sluice ${command} exited with ${child.exitCode} before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`sluice ${command} was not ready within 60 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

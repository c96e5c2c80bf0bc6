import type { spawn as Spawn } from "node:child_process";
import { tmpdir } from "node:os";

/** How to run one renderer. */
export interface RunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The process group is killed after this long. */
  timeoutMs: number;
  /** The process group is killed once stdout grows past this. */
  maxOutputBytes: number;
  /**
   * Run the command in namespaces of its own (`unshare`): no network at all (not even loopback),
   * its own process tree and /proc (so no other process's environment or files under /proc can
   * be read), and an unprivileged user.
   */
  sandbox: boolean | "auto";
}

/** How a run ended. */
export type RunResult =
  | { outcome: "ok"; stdout: string; stderr: string }
  | { outcome: "exit"; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
  | { outcome: "timeout" | "output-limit"; stderr: string }
  | { outcome: "spawn"; error: Error };

const MAX_STDERR = 64 * 1024;
/** A user namespace (unprivileged), a network namespace with nothing in it, and a PID namespace with its own /proc. */
const SANDBOX_FLAGS = ["--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"];

let sandboxWorks: Promise<boolean> | undefined;

/**
 * Whether renderers can run in namespaces of their own here (`unshare` with user, network and PID
 * namespaces; container runtimes' default seccomp profiles often forbid it); probed once per
 * process, the first time a renderer runs.
 */
export function canSandbox(): Promise<boolean> {
  sandboxWorks ??= runBounded("true", [], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    timeoutMs: 5_000,
    maxOutputBytes: 1024,
    sandbox: true,
  }).then((result) => result.outcome === "ok");
  return sandboxWorks;
}

/**
 * Runs a command to completion with a timeout and an output cap, in its own process group, and
 * in the sandbox when asked (`"auto"`: wherever the machine allows it).
 */
export async function runBounded(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const sandbox = options.sandbox === "auto" ? await canSandbox() : options.sandbox;
  // Loaded when a renderer first runs: a diff of plain manifests never starts a process.
  const { spawn } = await import("node:child_process");
  return runProcess(spawn, sandbox ? "unshare" : command, sandbox ? [...SANDBOX_FLAGS, "--", command, ...args] : [...args], options);
}

function runProcess(spawn: typeof Spawn, file: string, argv: readonly string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, [...argv], { cwd: options.cwd, env: options.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = "";
    let ended: "timeout" | "output-limit" | undefined;
    const kill = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // The group is already gone.
      }
    };
    const timer = setTimeout(() => {
      ended ??= "timeout";
      kill();
    }, options.timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > options.maxOutputBytes) {
        ended ??= "output-limit";
        kill();
        return;
      }
      chunks.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += chunk.toString("utf8");
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ outcome: "spawn", error });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (ended) resolve({ outcome: ended, stderr });
      else if (code === 0) resolve({ outcome: "ok", stdout: Buffer.concat(chunks).toString("utf8"), stderr });
      else resolve({ outcome: "exit", code, signal, stdout: Buffer.concat(chunks).toString("utf8"), stderr });
    });
  });
}

import { execFile } from "node:child_process";

/** How a command of the node's set-up is run. */
export interface CommandOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Milliseconds before the command is killed (default 10 minutes). */
  timeoutMs?: number;
}

/**
 * Runs `command` and resolves with its stdout. On failure the error names the command line and
 * carries the end of its stderr, since these commands (debootstrap, ctr, ip) explain themselves there.
 */
export function runCommand(command: string, args: readonly string[], options: CommandOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (!error) {
          resolve(stdout);
          return;
        }
        const tail = (stderr || stdout).trim().split("\n").slice(-20).join("\n");
        reject(new Error(`${command} ${args.join(" ")} failed (${error.code ?? error.signal ?? "error"}):\n${tail}`, { cause: error }));
      },
    );
  });
}

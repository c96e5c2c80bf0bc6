import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const SUPERVISE = fileURLToPath(new URL("./supervise.sh", import.meta.url));

/** A server process of the test environment, tied to this process's life, logging to a file. */
export class ManagedProcess {
  /** The component name used in messages, such as `etcd`. */
  readonly name: string;
  /** Where stdout and stderr go. */
  readonly logFile: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #exitCode: number | null | undefined;

  private constructor(name: string, logFile: string, child: ChildProcess) {
    this.name = name;
    this.logFile = logFile;
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once("exit", (code) => {
        this.#exitCode = code;
        resolve(code);
      });
    });
  }

  /** Starts `command` under the supervisor; its output goes to `logFile`. */
  static async start(name: string, command: string, args: readonly string[], logFile: string): Promise<ManagedProcess> {
    const log = createWriteStream(logFile, { flags: "a" });
    await new Promise<void>((resolve, reject) =>
      log
        .once("open", () => {
          resolve();
        })
        .once("error", reject),
    );
    const child = spawn("bash", [SUPERVISE, command, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.once("exit", () => log.end());
    const spawned = new ManagedProcess(name, logFile, child);
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (error) => {
        reject(new Error(`${name} could not be started: ${error.message}`, { cause: error }));
      });
    });
    return spawned;
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exitCode !== undefined;
  }

  /** The last lines of the log, for error messages. */
  async logTail(lines = 15): Promise<string> {
    const text = await readFile(this.logFile, "utf8").catch(() => "");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** An error that says the process exited, with the end of its log. */
  async exitError(while_: string): Promise<Error> {
    const tail = await this.logTail();
    const hint = /address already in use/i.test(tail) ? " (a port it wanted is already taken)" : "";
    return new Error(`${this.name} exited while ${while_}${hint}, code ${String(this.#exitCode)}; log ${this.logFile}:\n${tail}`);
  }

  /** Sends SIGTERM, then SIGKILL after `graceMs`, and waits for the exit. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.exited) return;
    this.#child.kill("SIGTERM");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns true, the process exits, or `timeoutMs` passes. */
export async function waitUntil(process: ManagedProcess, what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (process.exited) throw await process.exitError(`waiting for ${what}`);
    if (await check().catch(() => false)) return;
    if (performance.now() > deadline) {
      throw new Error(`${process.name} was not ${what} within ${timeoutMs} ms; log ${process.logFile}:\n${await process.logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

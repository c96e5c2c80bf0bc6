import type { spawn as Spawn } from "node:child_process";
import { open, realpath } from "node:fs/promises";
import { tmpdir } from "node:os";
import { errorMessage } from "../core/errors.ts";
import { findOnPath } from "./tools.ts";

/**
 * How renderers are isolated. `auto`: in the namespace sandbox wherever the machine allows it,
 * without it elsewhere; `required`: a render fails rather than run without it; `off`: never.
 */
export type SandboxSetting = "auto" | "required" | "off";

/** The sandbox settings, for parsing configuration. */
export const SANDBOX_SETTINGS = ["auto", "required", "off"] as const satisfies readonly SandboxSetting[];

/** Whether a configured value is a sandbox setting. */
export function isSandboxSetting(value: string): value is SandboxSetting {
  return (SANDBOX_SETTINGS as readonly string[]).includes(value);
}

/** How to run one renderer. */
export interface RunOptions {
  /** Its working directory, and its scratch: in the sandbox, the one place it may write. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The process group is killed after this long. */
  timeoutMs: number;
  /** The process group is killed once stdout grows past this. */
  maxOutputBytes: number;
  /**
   * Run the command in namespaces of its own (bubblewrap): a file system that holds only the
   * command, `readable` (read-only) and `cwd`; no network at all (not even loopback); its own
   * process tree and /proc; no capabilities.
   */
  sandbox: SandboxSetting;
  /** Directories the command may read in the sandbox (the checkout); nothing else of the machine is there. */
  readable?: readonly string[];
  /**
   * Its address space at the most (RLIMIT_AS), in bytes: past it allocations fail and the tool
   * exits. The data-segment limit would be closer to what a tool uses, but Go maps its heap over
   * address space it reserved earlier, which the kernel does not count against that limit.
   */
  memoryBytes?: number;
}

/** How a run ended. */
export type RunResult =
  | { outcome: "ok"; stdout: string; stderr: string }
  | { outcome: "exit"; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
  | { outcome: "timeout" | "output-limit"; stderr: string }
  | { outcome: "spawn"; error: Error };

const MAX_STDERR = 64 * 1024;

/** Whether the namespace sandbox runs here, and if not, why. */
export type SandboxProbe = { available: true; bwrap: string } | { available: false; reason: string };

let probed: Promise<SandboxProbe> | undefined;

/**
 * Whether renderers can run in the namespace sandbox here: bubblewrap on PATH, and a kernel and
 * seccomp profile that allow unprivileged user namespaces (container runtimes' default profiles
 * often forbid them). Probed once per process, the first time a renderer runs.
 */
export function probeSandbox(): Promise<SandboxProbe> {
  probed ??= probeSandboxOn(process.env.PATH);
  return probed;
}

/** Whether the namespace sandbox runs here with bubblewrap found on `path`; not cached. */
export async function probeSandboxOn(path: string | undefined): Promise<SandboxProbe> {
  const bwrap = await findOnPath("bwrap", path);
  if (!bwrap) return { available: false, reason: "bubblewrap (bwrap) is not on PATH" };
  const { spawn } = await import("node:child_process");
  const scratch = tmpdir();
  const probe = await runProcess(spawn, bwrap, await sandboxArgs("/bin/true", [], { cwd: scratch }), {
    cwd: scratch,
    env: { PATH: "/usr/bin:/bin" },
    timeoutMs: 10_000,
    maxOutputBytes: 1024,
  });
  if (probe.outcome === "ok") return { available: true, bwrap };
  const why = probe.outcome === "spawn" ? probe.error.message : probe.stderr.trim() || probe.outcome;
  return { available: false, reason: `bwrap cannot create namespaces here: ${why}` };
}

/** Whether renderers run in the namespace sandbox here. */
export async function canSandbox(): Promise<boolean> {
  return (await probeSandbox()).available;
}

/** Whether a run with this setting happens in the sandbox (a `required` one that cannot runs nowhere). */
export async function runsSandboxed(setting: SandboxSetting): Promise<boolean> {
  return setting !== "off" && (await canSandbox());
}

/** The error a run gets when the sandbox is required and cannot run. */
export class SandboxUnavailableError extends Error {
  constructor(reason: string) {
    super(`renderers must run in the sandbox (SLUICE_RENDER_SANDBOX=required), and it cannot run here: ${reason}`);
    this.name = "SandboxUnavailableError";
  }
}

/**
 * Runs a command to completion with a timeout, an output cap and a memory limit, in its own
 * process group, and in the sandbox as the setting says.
 */
export async function runBounded(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  let bwrap: string | undefined;
  if (options.sandbox !== "off") {
    const probe = await probeSandbox();
    if (probe.available) bwrap = probe.bwrap;
    else if (options.sandbox === "required") return { outcome: "spawn", error: new SandboxUnavailableError(probe.reason) };
  }
  // Loaded when a renderer first runs: a diff of plain manifests never starts a process.
  const { spawn } = await import("node:child_process");
  const path = options.env.PATH ?? process.env.PATH;
  let argv: string[];
  try {
    // The sandbox binds the binary itself, so a bare name is looked up first, as spawn would.
    const binary = bwrap && !command.includes("/") ? ((await findOnPath(command, path)) ?? command) : command;
    argv = bwrap ? [bwrap, ...(await sandboxArgs(binary, options.readable ?? [], options)), ...args] : [binary, ...args];
    if (options.memoryBytes !== undefined) {
      const prlimit = await prlimitOn(path);
      if (!prlimit) throw new Error("prlimit (util-linux), which limits a renderer's memory, is not on PATH");
      argv = [prlimit, `--as=${options.memoryBytes}`, "--", ...argv];
    }
  } catch (error) {
    return { outcome: "spawn", error: new Error(`${command} cannot be run: ${errorMessage(error)}`, { cause: error }) };
  }
  const [file = command, ...rest] = argv;
  return runProcess(spawn, file, rest, options);
}

/** Where prlimit was found, by PATH: looked up once per process, not once per render. */
const prlimits = new Map<string, string>();

async function prlimitOn(path: string | undefined): Promise<string | undefined> {
  const known = prlimits.get(path ?? "");
  if (known) return known;
  const found = await findOnPath("prlimit", path);
  // Only a find is kept: prlimit installed later is found then.
  if (found) prlimits.set(path ?? "", found);
  return found;
}

/** Library directories a dynamically linked command needs; a static one (helm and kustomize as shipped) needs none. */
const LIBRARY_DIRS = ["/lib", "/lib64", "/usr/lib", "/usr/lib64"];
/** What a script needs besides: its interpreter and the commands it runs. System directories only, never /etc, /home or /tmp. */
const SYSTEM_DIRS = ["/bin", "/sbin", "/lib", "/lib64", "/usr"];

/**
 * bubblewrap's arguments: new user, mount, network, PID, IPC, UTS and cgroup namespaces; a root
 * of nothing but the command (and the system libraries when it is linked dynamically), the
 * readable directories read-only, the scratch directory, a fresh /proc and a minimal /dev; then
 * the command to run there.
 */
async function sandboxArgs(command: string, readable: readonly string[], options: { cwd: string }): Promise<string[]> {
  const binary = await realpath(command);
  const args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev"];
  args.push("--ro-bind", binary, binary);
  const linkage = await linkageOf(binary);
  if (linkage !== "static") for (const dir of linkage === "script" ? SYSTEM_DIRS : LIBRARY_DIRS) args.push("--ro-bind-try", dir, dir);
  for (const dir of readable) {
    const real = await realpath(dir);
    args.push("--ro-bind", real, real);
    // Renderers are handed paths as the checkout was named; a link on the way (a temporary
    // directory under /tmp -> /private/tmp) must lead to the same place inside.
    if (real !== dir) args.push("--ro-bind", real, dir);
  }
  const scratch = await realpath(options.cwd);
  // The scratch directory is bound writable: the root would hand the renderer the whole machine.
  if (scratch === "/") throw new Error("the sandbox's scratch directory cannot be the root directory");
  args.push("--bind", scratch, scratch, "--chdir", scratch, "--", binary);
  return args;
}

/** Whether a command is a static ELF binary, a dynamically linked one (it names a program interpreter), or anything else. */
async function linkageOf(binary: string): Promise<"static" | "dynamic" | "script"> {
  const file = await open(binary, "r");
  try {
    const header = Buffer.alloc(64);
    await file.read(header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46) return "script";
    const is64 = header[4] === 2;
    const phoff = is64 ? Number(header.readBigUInt64LE(32)) : header.readUInt32LE(28);
    const phentsize = header.readUInt16LE(is64 ? 54 : 42);
    const phnum = header.readUInt16LE(is64 ? 56 : 44);
    const table = Buffer.alloc(phentsize * phnum);
    await file.read(table, 0, table.length, phoff);
    const PT_INTERP = 3;
    for (let i = 0; i < phnum; i += 1) if (table.readUInt32LE(i * phentsize) === PT_INTERP) return "dynamic";
    return "static";
  } finally {
    await file.close();
  }
}

function runProcess(
  spawn: typeof Spawn,
  file: string,
  argv: readonly string[],
  options: Pick<RunOptions, "cwd" | "env" | "timeoutMs" | "maxOutputBytes">,
): Promise<RunResult> {
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

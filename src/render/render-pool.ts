import { fork, type ChildProcess } from "node:child_process";
import { totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import type { Environment } from "../core/config.ts";
import type { Resource } from "../core/resource-set.ts";
import type { RenderedSide } from "./compare.ts";
import type { RenderLimits } from "./render-environment.ts";
import type { RenderTools } from "./tools.ts";
import { errorMessage } from "../core/errors.ts";

/** One render asked of a render process: one environment at one or more checkouts. */
export interface RenderTask {
  id: number;
  env: Environment;
  checkouts: string[];
  tools: RenderTools;
  limits: RenderLimits;
  requireInputs: boolean;
}

/** A rendered side as it crosses the process boundary: its resources as a list. */
export type WireSide = Omit<RenderedSide, "resources"> & { resources: Resource[] };

/** A render process's answer. */
export type RenderReply = { id: number; ok: true; sides: WireSide[] } | { id: number; ok: false; error: string };

/** How big render processes may grow, and how many run at once. */
export interface RenderPoolOptions {
  /** Render processes at most; each renders one environment at a time. */
  size: number;
  /** The V8 heap limit of each render process, in MiB. */
  heapMb: number;
  tools: RenderTools;
  limits: RenderLimits;
  /** Told how long each render took and whether every side rendered without problems. */
  observe?: (seconds: number, ok: boolean) => void;
}

const MIB = 1024 * 1024;
const STDERR_TAIL = 16 * 1024;

/**
 * The heap a render process gets by default: a quarter of the memory this process may use (its
 * cgroup limit when there is one), between 256 MiB and 2 GiB.
 */
export function defaultRenderHeapMb(): number {
  const total = totalmem();
  const constrained = process.constrainedMemory();
  const memory = constrained > 0 && constrained < total ? constrained : total;
  return Math.min(2048, Math.max(256, Math.floor(memory / 4 / MIB)));
}

/**
 * Renderer output that a render process can hold and parse: a quarter of its heap (parsed objects
 * take several times the text), and never more than `cap`.
 */
export function outputLimitFor(heapMb: number, cap = 256 * MIB): number {
  return Math.min(cap, Math.floor((heapMb * MIB) / 4));
}

function entryPoint(): string {
  // Built code runs the compiled .js; tests and scripts run the .ts source directly.
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`./render-process${extension}`, import.meta.url));
}

/** One render process and the task it runs. */
class RenderProcess {
  readonly #child: ChildProcess;
  #stderr = "";
  #task: { id: number; resolve: (reply: RenderReply) => void; reject: (error: Error) => void } | undefined;
  #exited: string | undefined;

  constructor(heapMb: number) {
    // No environment but PATH: the app's credentials never reach a process that reads repository content.
    this.#child = fork(entryPoint(), [], {
      env: { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8", MALLOC_ARENA_MAX: "2" },
      execArgv: [`--max-old-space-size=${heapMb}`],
      serialization: "advanced",
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    this.#child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString("utf8")).slice(-STDERR_TAIL);
    });
    this.#child.on("message", (message: RenderReply) => {
      if (this.#task?.id === message.id) this.#task.resolve(message);
    });
    // "close" comes after stderr is drained, so V8's out-of-memory report is there to read.
    this.#child.on("close", (code, signal) => {
      this.#exited = signal ? `was killed by ${signal}` : `exited with code ${String(code)}`;
      this.#task?.reject(new Error(this.#exited));
    });
    this.#child.on("error", (error) => {
      this.#exited ??= `failed: ${error.message}`;
      this.#task?.reject(error);
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#exited === undefined;
  }

  /** Whether the process said it ran out of heap (V8 writes a FATAL ERROR line, then a stack, to stderr). */
  get outOfMemory(): boolean {
    return /heap out of memory|Reached heap limit/i.test(this.#stderr);
  }

  run(task: RenderTask, deadlineMs: number): Promise<RenderReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`did not answer within ${deadlineMs} ms`));
        this.kill();
      }, deadlineMs);
      const settle =
        <T>(fn: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          this.#task = undefined;
          fn(value);
        };
      this.#task = { id: task.id, resolve: settle(resolve), reject: settle(reject) };
      this.#child.send(task);
    });
  }

  kill(): void {
    this.#child.kill("SIGKILL");
  }
}

/**
 * Renders in separate processes: repository content is parsed and rendered away from the
 * process that answers webhooks and holds the app's secrets, each process with a bounded heap.
 * A render that exhausts its heap or hangs kills only its process; the caller gets a problem
 * naming the environment, and the next render starts a fresh process.
 */
export class RenderPool {
  readonly #options: RenderPoolOptions;
  readonly #idle: RenderProcess[] = [];
  readonly #all = new Set<RenderProcess>();
  readonly #waiting: (() => void)[] = [];
  #nextId = 1;
  #closed = false;

  constructor(options: RenderPoolOptions) {
    this.#options = options;
  }

  /** The tools and limits renders run with, part of every render cache key. */
  get settings(): { tools: RenderTools; limits: RenderLimits } {
    return { tools: this.#options.tools, limits: this.#options.limits };
  }

  /** Renders `env` at each checkout (sharing one parse cache); one side per checkout, in order. Never throws for the render's sake. */
  async render(env: Environment, checkouts: readonly string[], options: { requireInputs?: boolean } = {}): Promise<RenderedSide[]> {
    const worker = await this.#take();
    const task: RenderTask = {
      id: this.#nextId++,
      env,
      checkouts: [...checkouts],
      tools: this.#options.tools,
      limits: this.#options.limits,
      requireInputs: options.requireInputs ?? false,
    };
    // Renderers time out on their own; this catches a process that stopped answering.
    const deadline = this.#options.limits.timeoutMs * Math.max(1, checkouts.length) + 30_000;
    const started = performance.now();
    let sides: RenderedSide[];
    try {
      const reply = await worker.run(task, deadline);
      sides = reply.ok
        ? reply.sides.map((side) => ({ ...side, resources: new Map(side.resources.map((r) => [r.key, r])) }))
        : failed(env, checkouts.length, `rendering ${env.path} failed: ${reply.error}`);
    } catch (error) {
      const memory = worker.outOfMemory ? ` (it ran out of its ${this.#options.heapMb} MiB heap)` : "";
      sides = failed(env, checkouts.length, `the render process for ${env.path} ${errorMessage(error)}${memory}; nothing was rendered`);
    } finally {
      this.#give(worker);
    }
    this.#options.observe?.(
      (performance.now() - started) / 1000,
      sides.every((side) => side.problems.length === 0),
    );
    return sides;
  }

  /** The process ids of the render processes running now. */
  pids(): number[] {
    return [...this.#all]
      .filter((w) => w.alive)
      .map((w) => w.pid)
      .filter((pid): pid is number => pid !== undefined);
  }

  /** Stops every render process. */
  close(): Promise<void> {
    this.#closed = true;
    for (const worker of this.#all) worker.kill();
    this.#all.clear();
    this.#idle.length = 0;
    for (const wake of this.#waiting.splice(0)) wake();
    return Promise.resolve();
  }

  async #take(): Promise<RenderProcess> {
    for (;;) {
      if (this.#closed) throw new Error("the render pool is closed");
      const idle = this.#idle.pop();
      if (idle?.alive) return idle;
      if (idle) {
        this.#all.delete(idle);
        continue;
      }
      if (this.#all.size < this.#options.size) {
        const worker = new RenderProcess(this.#options.heapMb);
        this.#all.add(worker);
        return worker;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #give(worker: RenderProcess): void {
    if (worker.alive && !this.#closed) this.#idle.push(worker);
    else this.#all.delete(worker);
    this.#waiting.shift()?.();
  }
}

function failed(env: Environment, sides: number, message: string): RenderedSide[] {
  return Array.from({ length: sides }, () => ({
    resources: new Map(),
    problems: [{ file: env.path, line: 1, message }],
    unknownScopes: [],
    transient: true,
  }));
}

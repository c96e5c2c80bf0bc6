import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Environment } from "../core/config.ts";
import type { DiffOptions } from "../core/diff.ts";
import { SIDES, type Side } from "../core/diff-report.ts";
import type { Resource } from "../core/resource-set.ts";
import { compareEnvironment, type EnvironmentComparison, type RenderedSide } from "./compare.ts";
import type { RenderLimits } from "./render-environment.ts";
import type { RenderTools } from "./tools.ts";
import { errorMessage } from "../core/errors.ts";

/** One render asked of a render process: one environment at one or more checkouts. */
export interface RenderTask {
  kind: "render";
  id: number;
  env: Environment;
  checkouts: string[];
  tools: RenderTools;
  limits: RenderLimits;
  requireInputs: boolean;
}

/**
 * A comparison asked of a render process: both sides of one environment, each decoded from its
 * render cache entry when one is given (`encodeRenderEntry`'s bytes, which the app verified), rendered
 * from its checkout otherwise. The comparison runs there too, so the app never holds either side.
 */
export interface CompareTask {
  kind: "compare";
  id: number;
  env: Environment;
  checkouts: Record<Side, string>;
  cached: Partial<Record<Side, Uint8Array>>;
  tools: RenderTools;
  limits: RenderLimits;
  diff?: DiffOptions;
}

/** What a render process is asked. */
export type RenderProcessTask = RenderTask | CompareTask;

/** A rendered side as it crosses the process boundary: its resources as a list. */
export type WireSide = Omit<RenderedSide, "resources"> & { resources: Resource[] };

/** A render process's answer to a render. */
export type RenderReply = { id: number; ok: true; sides: WireSide[] } | { id: number; ok: false; error: string };

/** The sides a comparison rendered, as render cache entries (`encodeRenderEntry`); a transient render has none. */
export type RenderedEntries = Partial<Record<Side, Uint8Array>>;

/** A render process's first answer to a comparison: the comparison, sent before the cache entries are made. */
export interface CompareAnswer {
  id: number;
  partial: true;
  comparison: EnvironmentComparison;
}

/** A render process's last answer to a comparison: the cache entries of the sides it rendered, or why it failed. */
export type CompareReply = { id: number; ok: true; entries: RenderedEntries } | { id: number; ok: false; error: string };

/** A comparison, and the render cache entries it made once they are made. */
export interface PoolComparison {
  comparison: EnvironmentComparison;
  /** Never rejects: a render process that fails after comparing made no entries. */
  entries: Promise<RenderedEntries>;
}

interface RunningTask {
  id: number;
  answer: (message: unknown, last: boolean) => void;
  reject: (error: Error) => void;
}

/** A task's answers from a render process: the first it sends (a comparison's) and its last (the only one of a render). */
interface TaskAnswers {
  first: Promise<unknown>;
  last: Promise<unknown>;
}

/** What a render process answered, or why it gave no answer (it failed, or stopped answering). */
type Answer = { message: unknown } | { failure: string };

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

// The default count and heap of render processes come from the cgroup's limits: render-budget.ts.

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
  #task: RunningTask | undefined;
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
    this.#child.on("message", (message: { id: number; partial?: true }) => {
      if (this.#task?.id === message.id) this.#task.answer(message, !message.partial);
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

  /** Runs `task`: both answers reject when the process fails or does not send its last within `deadlineMs`. */
  run(task: RenderProcessTask, deadlineMs: number): TaskAnswers {
    const first = Promise.withResolvers<unknown>();
    const last = Promise.withResolvers<unknown>();
    const timer = setTimeout(() => {
      this.#task?.reject(new Error(`did not answer within ${deadlineMs} ms`));
      this.kill();
    }, deadlineMs);
    const end = () => {
      clearTimeout(timer);
      this.#task = undefined;
    };
    this.#task = {
      id: task.id,
      answer: (message, final) => {
        first.resolve(message);
        if (!final) return;
        end();
        last.resolve(message);
      },
      reject: (error) => {
        end();
        first.reject(error);
        last.reject(error);
      },
    };
    try {
      this.#child.send(task);
    } catch (error) {
      this.#task.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return { first: first.promise, last: last.promise };
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

  /** Render processes at most: how many renders run at once. */
  get size(): number {
    return this.#options.size;
  }

  /** The tools and limits renders run with, part of every render cache key. */
  get settings(): { tools: RenderTools; limits: RenderLimits } {
    return { tools: this.#options.tools, limits: this.#options.limits };
  }

  /** Renders `env` at each checkout (sharing one parse cache); one side per checkout, in order. Never throws for the render's sake. */
  async render(env: Environment, checkouts: readonly string[], options: { requireInputs?: boolean } = {}): Promise<RenderedSide[]> {
    const task: RenderTask = {
      kind: "render",
      id: this.#nextId++,
      env,
      checkouts: [...checkouts],
      tools: this.#options.tools,
      limits: this.#options.limits,
      requireInputs: options.requireInputs ?? false,
    };
    const { last, started } = await this.#dispatch(task, checkouts.length);
    const answer = await last;
    const sides = renderedSides(env, checkouts.length, answer);
    this.#observe(
      started,
      sides.every((side) => side.problems.length === 0),
    );
    return sides;
  }

  /**
   * Compares both sides of `env` in a render process: a side with a cache entry is decoded from it,
   * the others are rendered (sharing one parse cache). The comparison comes back first; the
   * entries of the rendered sides follow, made while the caller goes on. Never throws for the
   * render's sake.
   */
  async compare(
    env: Environment,
    sides: { checkouts: Record<Side, string>; cached: Partial<Record<Side, Uint8Array>> },
    diff?: DiffOptions,
  ): Promise<PoolComparison> {
    const task: CompareTask = {
      kind: "compare",
      id: this.#nextId++,
      env,
      checkouts: sides.checkouts,
      cached: sides.cached,
      tools: this.#options.tools,
      limits: this.#options.limits,
      ...(diff ? { diff } : {}),
    };
    const renders = SIDES.filter((side) => sides.cached[side] === undefined).length;
    const { first, last, started } = await this.#dispatch(task, Math.max(1, renders));
    const answer = await first;
    const comparison = comparisonOf(env, answer);
    const entries = last.then((final) => {
      this.#observe(started, comparison.errors.length === 0);
      return entriesOf(answer, final);
    });
    return { comparison, entries };
  }

  /**
   * Runs a task in an idle render process, which goes back to the pool once the task's last
   * answer comes or the process fails. Neither answer rejects: a failure becomes one naming the
   * environment. Throws only when the pool is closed.
   */
  async #dispatch(task: RenderProcessTask, renders: number): Promise<{ first: Promise<Answer>; last: Promise<Answer>; started: number }> {
    const worker = await this.#take();
    // Renderers time out on their own; this catches a process that stopped answering.
    const deadline = this.#options.limits.timeoutMs * renders + 30_000;
    const started = performance.now();
    const answers = worker.run(task, deadline);
    const failure = (error: unknown): Answer => {
      const memory = worker.outOfMemory ? ` (it ran out of its ${this.#options.heapMb} MiB heap)` : "";
      return { failure: `the render process for ${task.env.path} ${errorMessage(error)}${memory}; nothing was rendered` };
    };
    const last = answers.last.then((message): Answer => ({ message }), failure);
    const first = answers.first.then((message): Answer => ({ message }), failure);
    void last.then(() => {
      this.#give(worker);
    });
    return { first, last, started };
  }

  #observe(started: number, ok: boolean): void {
    this.#options.observe?.((performance.now() - started) / 1000, ok);
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

/** The sides of a render's answer; a failed render's sides each carry the problem. */
function renderedSides(env: Environment, count: number, answer: Answer): RenderedSide[] {
  const failed = (message: string) => Array.from({ length: count }, () => failedSide(message, env.path));
  if ("failure" in answer) return failed(answer.failure);
  const reply = answer.message as RenderReply;
  return reply.ok
    ? reply.sides.map((side) => ({ ...side, resources: new Map(side.resources.map((r) => [r.key, r])) }))
    : failed(`rendering ${env.path} failed: ${reply.error}`);
}

function isComparison(answer: Answer): answer is { message: CompareAnswer } {
  return "message" in answer && (answer.message as Partial<CompareAnswer>).partial === true;
}

/** The comparison a render process sent first, or one of failed sides saying why none came (its first answer was its last). */
function comparisonOf(env: Environment, first: Answer): EnvironmentComparison {
  if (isComparison(first)) return first.message.comparison;
  const reply = "failure" in first ? undefined : (first.message as CompareReply);
  const message =
    "failure" in first
      ? first.failure
      : reply?.ok === false
        ? `rendering ${env.path} failed: ${reply.error}`
        : `the render process for ${env.path} sent no comparison`;
  const side = failedSide(message, env.path);
  return compareEnvironment(env, { base: side, head: side });
}

/** The entries a comparison made: none when it failed, or sent no comparison first. */
function entriesOf(first: Answer, last: Answer): RenderedEntries {
  if (!isComparison(first) || "failure" in last) return {};
  const reply = last.message as CompareReply;
  return reply.ok ? reply.entries : {};
}

/** A side that did not render and may when tried again. */
function failedSide(message: string, file: string): RenderedSide {
  return { resources: new Map(), problems: [{ file, line: 1, message }], unknownScopes: [], transient: true };
}

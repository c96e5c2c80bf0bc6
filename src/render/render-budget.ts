/**
 * How many render processes an app replica runs and how much memory each may take, from the CPU
 * and memory its cgroup allows (issue 24: counted from the node's cores, with each heap a quarter
 * of the limit, a heavy render OOM-killed the whole pod instead of failing one render).
 *
 * The budget, in MiB, with M the memory limit:
 *
 *     APP_RESERVE_MB + processes × (heapMb + toolMemoryMb − GO_RESERVED_MB) ≤ M
 *
 * - `APP_RESERVE_MB` (512) stays for the app process itself: webhooks, previews being assembled,
 *   queues, the diff pages.
 * - Each render process may grow to its V8 heap (`heapMb`, `--max-old-space-size`) while it runs
 *   one helm or kustomize at a time, whose address space is capped at `toolMemoryMb` (RLIMIT_AS).
 *   Of that cap, Go reserves address space at start that never becomes memory (`GO_RESERVED_MB`:
 *   helm 3.22 will not start below 1344 MiB, kustomize 5.8 below 1280 MiB, measured with prlimit),
 *   so a tool at its cap holds at most `toolMemoryMb − GO_RESERVED_MB`.
 *
 * Defaults: one process per CPU of the quota (the node's CPUs when there is none), at least two,
 * and no more than fit with 512 MiB each (at least one). Not capped by how many preview jobs run
 * at once: one preview renders its environments on every process (issue 28);
 * what is left per process is split between the heap (256 to 2048 MiB) and the tool (1664 to
 * 3584 MiB of address space). Settings given explicitly are kept, and a budget they overrun is
 * reported (`fits: false`) rather than refused.
 */

/** Memory the app process keeps for itself, outside the render processes. */
export const APP_RESERVE_MB = 512;
/** Address space Go reserves at start and never fills: not counted against the memory limit. */
export const GO_RESERVED_MB = 1408;
const HEAP_MB = { min: 256, max: 2048 } as const;
const TOOL_MB = { min: GO_RESERVED_MB + 256, max: GO_RESERVED_MB + 2176 } as const;
const MIB = 1024 * 1024;

/** What the cgroup allows: undefined where it sets no limit. */
export interface CgroupLimits {
  /** CPUs of the CPU quota (quota / period), possibly fractional. */
  cpus?: number;
  memoryBytes?: number;
}

/** Reads a file's text, or undefined when it does not exist. */
export type FileReader = (path: string) => Promise<string | undefined>;

const ROOT = "/sys/fs/cgroup";

/**
 * The CPU quota and memory limit of this process's cgroup: v2 (`cpu.max`, `memory.max`), else v1
 * (`cpu.cfs_quota_us` / `cpu.cfs_period_us`, `memory.limit_in_bytes`). Each file is looked for
 * under the process's own cgroup (from `/proc/self/cgroup`) and at the mount's root, which is
 * where a container sees its own cgroup; the lowest limit wins. `read` reads the files, so tests
 * give it theirs.
 */
export async function readCgroupLimits(read: FileReader): Promise<CgroupLimits> {
  const own = parseProcCgroup((await read("/proc/self/cgroup")) ?? "");
  // The directories to look in: the process's own cgroup, then the mount's root.
  const dirs = (mount: string, path: string | undefined): string[] =>
    path !== undefined && path !== "/" ? [`${mount}${path}`, mount] : [mount];
  const lowest = async (paths: string[], parse: (text: string) => number | undefined): Promise<number | undefined> => {
    let found: number | undefined;
    for (const path of paths) {
      const text = await read(path);
      const value = text === undefined ? undefined : parse(text.trim());
      if (value !== undefined && (found === undefined || value < found)) found = value;
    }
    return found;
  };
  const only = (cpus: number | undefined, memoryBytes: number | undefined): CgroupLimits => ({
    ...(cpus === undefined ? {} : { cpus }),
    ...(memoryBytes === undefined ? {} : { memoryBytes }),
  });
  // v2 has cgroup.controllers at its root; a hybrid hierarchy (v1 controllers, an empty v2 at
  // /sys/fs/cgroup/unified) and v1 do not.
  if ((await read(`${ROOT}/cgroup.controllers`)) !== undefined) {
    const v2 = dirs(ROOT, own.get(""));
    return only(
      await lowest(
        v2.map((d) => `${d}/cpu.max`),
        parseCpuMax,
      ),
      await lowest(
        v2.map((d) => `${d}/memory.max`),
        parseMemoryBytes,
      ),
    );
  }
  const cpuController = own.has("cpu,cpuacct") ? "cpu,cpuacct" : "cpu";
  let cpus: number | undefined;
  for (const dir of dirs(`${ROOT}/${cpuController}`, own.get(cpuController))) {
    const quota = Number((await read(`${dir}/cpu.cfs_quota_us`))?.trim());
    const period = Number((await read(`${dir}/cpu.cfs_period_us`))?.trim());
    if (quota > 0 && period > 0 && (cpus === undefined || quota / period < cpus)) cpus = quota / period;
  }
  const memory = dirs(`${ROOT}/memory`, own.get("memory")).map((d) => `${d}/memory.limit_in_bytes`);
  return only(cpus, await lowest(memory, parseMemoryBytes));
}

/** `/proc/self/cgroup` as controller list → path (`""` for the v2 hierarchy). */
function parseProcCgroup(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (controllers !== undefined && path !== undefined) paths.set(controllers, path);
  }
  return paths;
}

/** `cpu.max`: `max 100000` (no quota) or `<quota> <period>`. */
function parseCpuMax(text: string): number | undefined {
  const [quota = "", period = ""] = text.split(/\s+/);
  const q = Number(quota);
  const p = Number(period);
  return quota !== "max" && q > 0 && p > 0 ? q / p : undefined;
}

/**
 * `memory.max` (`max` when unlimited) or `memory.limit_in_bytes` (v1 writes a page-rounded
 * 2^63 − 1 when unlimited: anything from 2^60 up counts as no limit).
 */
function parseMemoryBytes(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const bytes = Number(text);
  return bytes > 0 && bytes < 2 ** 60 ? bytes : undefined;
}

/** What the budget is worked out from. */
export interface RenderBudgetInput {
  /** Memory the app's container may use, in bytes: its cgroup limit, else the machine's memory. */
  memoryBytes: number;
  /** CPUs it may use: its CPU quota, else the machine's. */
  cpus: number;
  /** `SLUICE_RENDER_PROCESSES`, `SLUICE_RENDER_MEMORY_MB`, `SLUICE_RENDER_TOOL_MEMORY_MB` when set. */
  given?: { processes?: number | undefined; heapMb?: number | undefined; toolMemoryMb?: number | undefined };
}

/** The render processes, their heaps and their tools' address space, and how they add up. */
export interface RenderBudget {
  processes: number;
  heapMb: number;
  toolMemoryMb: number;
  /** The memory limit the budget is for, in MiB. */
  memoryMb: number;
  /** What the app and its render processes may take at most: `APP_RESERVE_MB + processes × (heapMb + toolMemoryMb − GO_RESERVED_MB)`. */
  totalMb: number;
  /** Whether `totalMb` fits the memory limit (false only when settings given explicitly overrun it). */
  fits: boolean;
}

const clamp = (value: number, range: { min: number; max: number }): number => Math.min(range.max, Math.max(range.min, value));

/** Works out the render budget (see the top of this file). */
export function renderBudget(input: RenderBudgetInput): RenderBudget {
  const given = input.given ?? {};
  const memoryMb = Math.floor(input.memoryBytes / MIB);
  const room = memoryMb - APP_RESERVE_MB;
  const smallest = HEAP_MB.min + (TOOL_MB.min - GO_RESERVED_MB);
  const byCpu = Math.max(2, Math.ceil(input.cpus));
  const processes = given.processes ?? Math.max(1, Math.min(byCpu, Math.floor(room / smallest)));
  const share = Math.floor(room / processes);
  const heapMb =
    given.heapMb ??
    clamp(given.toolMemoryMb === undefined ? Math.floor(share / 2) : share - (given.toolMemoryMb - GO_RESERVED_MB), HEAP_MB);
  const toolMemoryMb = given.toolMemoryMb ?? clamp(GO_RESERVED_MB + share - heapMb, TOOL_MB);
  const totalMb = APP_RESERVE_MB + processes * (heapMb + toolMemoryMb - GO_RESERVED_MB);
  return { processes, heapMb, toolMemoryMb, memoryMb, totalMb, fits: totalMb <= memoryMb };
}

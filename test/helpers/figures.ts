import { readdir, readFile } from "node:fs/promises";

/** The value below which `p` percent of `values` fall (nearest rank); 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  return [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))] ?? 0;
}

/** A process's resident memory now (`VmRSS`) or at its peak (`VmHWM`), in MB; 0 once it is gone. */
export async function memoryMb(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): Promise<number> {
  const status = await readFile(`/proc/${String(pid)}/status`, "utf8").catch(() => "");
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
}

/** A process's proportional set size (`Pss`): its private pages, and its share of pages it maps with others; 0 once it is gone. */
async function pssMb(pid: number): Promise<number> {
  const rollup = await readFile(`/proc/${String(pid)}/smaps_rollup`, "utf8").catch(() => "");
  return Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) / 1024;
}

/** The memory of a process tree (an app and its render processes), in MB. */
export interface TreeMemory {
  /** The sum of each process's resident memory: pages the processes share (the Node binary) count once per process. */
  rss: number;
  /** The sum of each process's proportional set size: shared pages count once for the tree, as the pod's memory counts them. */
  pss: number;
}

/** One process as `/proc/<pid>/stat` gives it. */
export interface ProcessEntry {
  parent: number;
  /** CPU time, in ms: its own (utime + stime) and that of the children it has waited for (cutime + cstime). */
  cpuMs: number;
  /** Its own CPU time alone (utime + stime), in ms. */
  ownMs: number;
}

/** Every process now, by pid. */
export async function processTable(): Promise<Map<number, ProcessEntry>> {
  const table = new Map<number, ProcessEntry>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Clock ticks of 10 ms.
    const ticks = [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index] ?? 0), 0);
    const own = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    table.set(Number(entry), { parent: Number(fields[1]), cpuMs: ticks * 10, ownMs: own * 10 });
  }
  return table;
}

/** `root` and all its descendants in `table`. */
export function processTree(table: ReadonlyMap<number, ProcessEntry>, root: number): number[] {
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = table.get(p)?.parent) if (p === root) return true;
    return false;
  };
  return [...table.keys()].filter(inTree);
}

/** The memory of a process and all its descendants. */
export async function treeMemoryMb(root: number): Promise<TreeMemory> {
  const pids = processTree(await processTable(), root);
  const [rss, pss] = await Promise.all([Promise.all(pids.map((pid) => memoryMb(pid))), Promise.all(pids.map(pssMb))]);
  const sum = (sizes: number[]): number => sizes.reduce((total, mb) => total + mb, 0);
  return { rss: sum(rss), pss: sum(pss) };
}

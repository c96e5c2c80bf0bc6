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

/** The memory of a process and all its descendants. */
export async function treeMemoryMb(root: number): Promise<TreeMemory> {
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) if (p === root) return true;
    return false;
  };
  const pids = [...parents.keys()].filter(inTree);
  const [rss, pss] = await Promise.all([Promise.all(pids.map((pid) => memoryMb(pid))), Promise.all(pids.map(pssMb))]);
  const sum = (sizes: number[]): number => sizes.reduce((total, mb) => total + mb, 0);
  return { rss: sum(rss), pss: sum(pss) };
}

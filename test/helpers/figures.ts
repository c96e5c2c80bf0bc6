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

/** The resident memory of a process and all its descendants (an app and its render processes), in MB. */
export async function treeMemoryMb(root: number): Promise<number> {
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
  const sizes = await Promise.all([...parents.keys()].filter(inTree).map((pid) => memoryMb(pid)));
  return sizes.reduce((sum, mb) => sum + mb, 0);
}

import { describe, expect, it } from "vitest";
import { loadSettings } from "../../../src/app/settings.ts";
import { APP_RESERVE_MB, GO_RESERVED_MB, readCgroupLimits, renderBudget } from "../../../src/render/render-budget.ts";

const GIB = 1024 ** 3;

/** A file reader over the files given: undefined for any other path, as for a file that does not exist. */
function files(given: Record<string, string>): (path: string) => Promise<string | undefined> {
  return (path) => Promise.resolve(given[path]);
}

describe("the cgroup's limits", () => {
  it("reads cgroup v2's cpu.max and memory.max", async () => {
    const limits = await readCgroupLimits(
      files({
        "/proc/self/cgroup": "0::/\n",
        "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
        "/sys/fs/cgroup/cpu.max": "150000 100000\n",
        "/sys/fs/cgroup/memory.max": "2147483648\n",
      }),
    );
    expect(limits).toEqual({ cpus: 1.5, memoryBytes: 2 * GIB });
  });

  it("takes v2's max as no limit", async () => {
    const limits = await readCgroupLimits(
      files({
        "/proc/self/cgroup": "0::/\n",
        "/sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
        "/sys/fs/cgroup/cpu.max": "max 100000\n",
        "/sys/fs/cgroup/memory.max": "max\n",
      }),
    );
    expect(limits).toEqual({});
  });

  it("reads cgroup v1 (a hybrid hierarchy, as on these machines), under the process's own cgroup too", async () => {
    const limits = await readCgroupLimits(
      files({
        "/proc/self/cgroup": "4:memory:/kubepods/pod1/c1\n2:cpu,cpuacct:/kubepods/pod1/c1\n0::/\n",
        "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1/cpu.cfs_quota_us": "200000\n",
        "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1/cpu.cfs_period_us": "100000\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        "/sys/fs/cgroup/memory/kubepods/pod1/c1/memory.limit_in_bytes": "1073741824\n",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
      }),
    );
    expect(limits).toEqual({ cpus: 2, memoryBytes: GIB });
  });

  it("reads v1 where a container sees its own cgroup at the mount's root, and no limit as none", async () => {
    expect(
      await readCgroupLimits(
        files({
          "/proc/self/cgroup": "4:memory:/\n1:cpu:/\n",
          "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
          "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
          "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        }),
      ),
    ).toEqual({});
    expect(await readCgroupLimits(files({}))).toEqual({});
  });
});

describe("the render budget", () => {
  const total = (b: { processes: number; heapMb: number; toolMemoryMb: number }): number =>
    APP_RESERVE_MB + b.processes * (b.heapMb + b.toolMemoryMb - GO_RESERVED_MB);

  it("fits the shipped 2 GiB limit on a 6-core node without a CPU quota", () => {
    const budget = renderBudget({ memoryBytes: 2 * GIB, cpus: 6 });
    expect(budget).toEqual({ processes: 3, heapMb: 256, toolMemoryMb: 1664, memoryMb: 2048, totalMb: 2048, fits: true });
    expect(total(budget)).toBeLessThanOrEqual(2048);
  });

  it("follows the CPU quota, and keeps the previous figures where memory is plentiful", () => {
    expect(renderBudget({ memoryBytes: 8 * GIB, cpus: 1.5 })).toMatchObject({ processes: 2, fits: true });
    expect(renderBudget({ memoryBytes: 64 * GIB, cpus: 6 })).toMatchObject({
      processes: 6,
      heapMb: 2048,
      toolMemoryMb: 3584,
      fits: true,
    });
  });

  it("runs a render process on every core, however few preview jobs run at once (issue 28: one preview of 500 environments renders on all of them)", () => {
    expect(renderBudget({ memoryBytes: 64 * GIB, cpus: 16 })).toMatchObject({ processes: 16, fits: true });
  });

  it("fits every limit from 1 GiB up, and keeps settings given explicitly, saying when they overrun", () => {
    for (const gib of [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32])
      for (const cpus of [0.5, 1, 2, 4, 6, 16]) {
        const budget = renderBudget({ memoryBytes: gib * GIB, cpus });
        expect(budget.fits, `${gib} GiB, ${cpus} CPUs`).toBe(true);
        expect(total(budget)).toBeLessThanOrEqual(budget.memoryMb);
        expect(budget.processes).toBeGreaterThanOrEqual(1);
      }
    const given = renderBudget({ memoryBytes: 2 * GIB, cpus: 6, given: { processes: 6, toolMemoryMb: 3072 } });
    expect(given).toMatchObject({ processes: 6, toolMemoryMb: 3072, heapMb: 256, fits: false });
  });

  it("is what the app's settings use, from the cgroup's files", async () => {
    const settings = await loadSettings(
      { APP_ID: "1", PRIVATE_KEY: "k", WEBHOOK_SECRET: "w", REDIS_URL: "redis://r:6379" },
      {
        readFile: files({
          "/proc/self/cgroup": "0::/\n",
          "/sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
          "/sys/fs/cgroup/cpu.max": "max 100000\n",
          "/sys/fs/cgroup/memory.max": String(2 * GIB),
        }),
        totalMemoryBytes: 64 * GIB,
        cpus: 6,
      },
    );
    const { renderProcesses, renderMemoryMb, renderToolMemoryMb } = settings;
    expect({ renderProcesses, renderMemoryMb, renderToolMemoryMb }).toEqual({
      renderProcesses: 3,
      renderMemoryMb: 256,
      renderToolMemoryMb: 1664,
    });
    expect(APP_RESERVE_MB + renderProcesses * (renderMemoryMb + renderToolMemoryMb - GO_RESERVED_MB)).toBeLessThanOrEqual(2048);
  });
});

import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { CheckoutCache } from "../../../src/app/checkouts/checkout-cache.ts";
import { tempDir } from "../../helpers/checkouts.ts";

// The cache directory's owner file, as a pod sees it: the volume outlives a killed container, and
// the restarted container numbers its processes from 1 again.

const children: { kill: () => boolean }[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill();
});

/** A live process that is not a sluice app (as the restarted container's tini or a render would be). */
async function otherProcess(): Promise<number> {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  children.push(child);
  await new Promise((resolve) => child.once("spawn", resolve));
  return child.pid ?? 0;
}

/** The start time /proc gives `pid`. */
async function started(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${String(pid)}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
}

describe("the checkout cache's owner", () => {
  it("takes over a directory whose owner was killed and whose pid now belongs to another process", async () => {
    const dir = await tempDir("sluice-cache-owner-");
    const reused = await otherProcess();
    // What the killed app left: its pid (now another process's) and its own start time.
    await writeFile(`${dir}/.sluice-app.pid`, `${String(reused)} 1`);

    await new CheckoutCache({ dir, maxCacheBytes: 1 << 20, maxBytes: 1 << 20, maxFiles: 100 }).claim();

    expect(await readFile(`${dir}/.sluice-app.pid`, "utf8")).toBe(`${String(process.pid)} ${await started(process.pid)}`);
  });

  it("refuses a directory whose owner still runs", async () => {
    const dir = await tempDir("sluice-cache-owner-");
    const owner = await otherProcess();
    await writeFile(`${dir}/.sluice-app.pid`, `${String(owner)} ${await started(owner)}`);

    await expect(new CheckoutCache({ dir, maxCacheBytes: 1 << 20, maxBytes: 1 << 20, maxFiles: 100 }).claim()).rejects.toThrow(
      `is in use by another sluice app (pid ${String(owner)})`,
    );
  });
});

import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import { renderBudget } from "../../src/render/render-budget.ts";
import { tempDir } from "../helpers/checkouts.ts";

// The render budget's address-space cap against the real tools: a cap below what Go reserves at
// start makes every helm and kustomize run fail before it reads anything (the shipped 2 GiB
// Deployment on a 2-CPU node once failed every render this way).

const run = promisify(execFile);
const GIB = 1024 ** 3;

/** Runs `command` with RLIMIT_AS at `mb` MiB, as render processes run the tools. */
async function within(mb: number, command: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  return run("prlimit", [`--as=${String(mb * 1024 * 1024)}`, command, ...args]).then(
    () => ({ ok: true, stderr: "" }),
    (error: unknown) => ({ ok: false, stderr: String((error as { stderr?: string }).stderr ?? error).slice(0, 300) }),
  );
}

describe("the render budget's tool cap", () => {
  it("lets helm and kustomize render under the smallest cap any memory limit gets", async () => {
    const dir = await tempDir("sluice-budget-tools-");
    await mkdir(join(dir, "base"));
    await mkdir(join(dir, "chart", "templates"), { recursive: true });
    await writeFile(join(dir, "base", "kustomization.yaml"), "resources:\n  - cm.yaml\n");
    await writeFile(join(dir, "base", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n");
    await writeFile(join(dir, "chart", "Chart.yaml"), "apiVersion: v2\nname: chart\nversion: 0.1.0\n");
    await writeFile(
      join(dir, "chart", "templates", "cm.yaml"),
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
    );
    const caps = [1, 2, 4].flatMap((gib) => [1, 2, 6].map((cpus) => renderBudget({ memoryBytes: gib * GIB, cpus }).toolMemoryMb));
    const smallest = Math.min(...caps);

    const kustomize = await within(smallest, inject("kustomize"), ["build", join(dir, "base")]);
    const helm = await within(smallest, inject("helm"), ["template", "release", join(dir, "chart")]);

    expect({ smallest, kustomize, helm }).toEqual({ smallest, kustomize: { ok: true, stderr: "" }, helm: { ok: true, stderr: "" } });
  });
});

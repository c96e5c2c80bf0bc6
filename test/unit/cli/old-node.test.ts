import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BIN = fileURLToPath(new URL("../../../bin/sluice.js", import.meta.url));
/** The system's Node on these machines is 20, older than the project's engines, with its npm. */
const SYSTEM_NODE = "/usr/bin/node";
const SYSTEM_NPM = "/usr/bin/npm";

describe("an older Node", () => {
  it.skipIf(!existsSync(SYSTEM_NODE))("gets a message naming scripts/node.sh and exit code 1 from bin/sluice.js", () => {
    const version = spawnSync(SYSTEM_NODE, ["--version"], { encoding: "utf8" }).stdout.trim();
    expect(version, "the system Node is expected to be older than 22.19").toMatch(/^v(1\d|20|21|22\.(\d|1[0-8]))\./);

    const run = spawnSync(SYSTEM_NODE, [BIN, "app"], { cwd: ROOT, encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });

    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      `sluice: Node.js 22.19 or newer is needed; this is Node.js ${version} (${SYSTEM_NODE}).\n` +
        "In the Sluice repository, run\n" +
        '  export PATH="$(scripts/node.sh):$PATH"\n' +
        "(scripts/node.sh installs Node.js 24 into ~/.cache/sluice-node and prints its bin directory), then run npm ci and the command again.\n",
    );
  });

  it.skipIf(!existsSync(SYSTEM_NPM))("is refused by the quick start's first step, npm ci, naming the Node it needs", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-old-node-"));
    try {
      for (const file of ["package.json", "package-lock.json", ".npmrc"]) copyFileSync(join(ROOT, file), join(dir, file));
      const run = spawnSync(SYSTEM_NPM, ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], {
        cwd: dir,
        encoding: "utf8",
        env: { PATH: "/usr/bin:/bin", HOME: process.env.HOME ?? dir },
        timeout: 120_000,
      });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain("npm error code EBADENGINE");
      expect(run.stderr).toContain('Required: {"node":">=22.19"}');
      expect(existsSync(join(dir, "node_modules"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("passes the check on this Node, and the check agrees with package.json's engines and .npmrc's engine-strict", () => {
    const run = spawnSync(process.execPath, [fileURLToPath(new URL("../../../bin/check-node.js", import.meta.url))], { encoding: "utf8" });
    expect([run.status, run.stderr]).toEqual([0, ""]);
    const engines = (JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { engines: { node: string } }).engines.node;
    expect(engines).toBe(">=22.19");
    expect(readFileSync(`${ROOT}bin/check-node.js`, "utf8")).toContain("var MINIMUM = [22, 19];");
    // npm ci (the quick start's first step) then refuses an older Node, naming the range.
    expect(readFileSync(`${ROOT}.npmrc`, "utf8").split("\n")).toContain("engine-strict=true");
  });
});

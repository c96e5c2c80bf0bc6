import { execFile, spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";
import { findRedisServer } from "../env/redis.ts";
import { startTestEnv } from "../env/start.ts";
import { removeCheckouts, tempDir } from "../helpers/checkouts.ts";

afterAll(removeCheckouts);

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));

async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("no address");
  return { server, port: address.port };
}

async function processesMatching(pattern: string): Promise<string[]> {
  const { stdout } = await run("pgrep", ["-f", pattern]).catch(() => ({ stdout: "" }));
  return stdout.split("\n").filter(Boolean);
}

describe("test environment failures", () => {
  const log = (): void => undefined;

  it("names a port that is already taken and starts nothing", async () => {
    const { server, port } = await holdPort();
    try {
      const env = { ...process.env, KUBECONFIG: inject("kubeconfigPath"), REDIS_URL: "", SLUICE_REDIS_PORT: String(port) };
      await expect(startTestEnv({ env, log })).rejects.toThrow(`port ${port} on 127.0.0.1 is already taken (wanted for redis-server)`);
      expect(await processesMatching(`redis-server.*--port ${port}`)).toEqual([]);
    } finally {
      server.close();
    }
  });

  it("refuses an etcd data directory left by an earlier run, and stops nothing it did not start", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "etcd", "member"), { recursive: true });
    const env = { ...process.env, KUBECONFIG: "", REDIS_URL: "", SLUICE_TEST_ENV_DIR: dir };
    await expect(startTestEnv({ env, log, controllers: false })).rejects.toThrow(
      `etcd data directory ${join(dir, "etcd")} is not empty (member), left by an earlier run; remove it before starting again`,
    );
    expect(await processesMatching(`etcd.*--data-dir=${join(dir, "etcd")}`)).toEqual([]);
  });

  it("says how to get Redis when redis-server is missing", async () => {
    await expect(findRedisServer("/nonexistent/redis-server")).rejects.toThrow(
      "redis-server is not installed: run `apt-get install redis-server` (or your system's equivalent), or set REDIS_URL to an existing Redis",
    );
  });

  it("names the module and version of a binary that fails to build", async () => {
    const tools = await tempDir();
    await mkdir(join(tools, "kustomize"));
    await writeFile(
      join(tools, "kustomize", "go.mod"),
      "module sluice.dev/test-env/kustomize\n\ngo 1.26.0\n\nrequire sigs.k8s.io/kustomize/kustomize/v5 v5.0.99-missing\n",
    );
    const cache = await tempDir();
    const result = await run("bash", [join(root, "scripts/test-tools.sh"), "kustomize"], {
      env: { ...process.env, SLUICE_TOOLS_DIR: tools, SLUICE_TOOLS_CACHE: cache, GOPROXY: "off", GOFLAGS: "" },
    }).then(
      () => ({ stderr: "" }),
      (error: unknown) => error as { stderr: string },
    );
    expect(result.stderr).toContain("test-tools: building kustomize failed: module sigs.k8s.io/kustomize/kustomize/v5 v5.0.99-missing");
  });

  it("leaves no process behind when the process that started it is killed", async () => {
    const marker = `${1000 + Math.floor(Math.random() * 1000)}.25`;
    const script = `import { ManagedProcess } from ${JSON.stringify(join(root, "test/env/managed-process.ts"))};
await ManagedProcess.start("sleeper", "sleep", [${JSON.stringify(marker)}], "/dev/null");
process.stdout.write("started\\n");
setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) =>
      parent.stdout.once("data", () => {
        resolve();
      }),
    );
    expect(await processesMatching(`sleep ${marker}`)).not.toEqual([]);
    parent.kill("SIGKILL");
    await expect.poll(() => processesMatching(`^sleep ${marker}$`), { timeout: 15_000, interval: 200 }).toEqual([]);
  });
});

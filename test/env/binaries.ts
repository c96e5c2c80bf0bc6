import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL("../../scripts/test-tools.sh", import.meta.url));

/** The binaries the test environment runs. */
export type ToolName =
  "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kubelet" | "kustomize" | "helm" | "dyff" | "pause";

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * Paths of the requested binaries. etcd and kube-apiserver come from `KUBEBUILDER_ASSETS` when
 * that directory has them; everything else is built (once, then cached) by scripts/test-tools.sh
 * from the pinned wrapper modules.
 */
export async function ensureTools(
  names: readonly ToolName[],
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<Record<ToolName, string>> {
  const found: Partial<Record<ToolName, string>> = {};
  const assets = env.KUBEBUILDER_ASSETS;
  if (assets) {
    for (const name of names) {
      const path = join(assets, name);
      if (await executable(path)) found[name] = path;
    }
    if (names.includes("etcd") && !found.etcd) throw new Error(`KUBEBUILDER_ASSETS=${assets} has no executable etcd`);
    if (names.includes("kube-apiserver") && !found["kube-apiserver"])
      throw new Error(`KUBEBUILDER_ASSETS=${assets} has no executable kube-apiserver`);
  }
  const missing = names.filter((name) => !found[name]);
  if (missing.length > 0) {
    try {
      const { stdout } = await run("bash", [SCRIPT, ...missing], { env, maxBuffer: 16 * 1024 * 1024 });
      for (const line of stdout.trim().split("\n")) if (line) log(line);
    } catch (error) {
      const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
      throw new Error(`building the test tools failed:\n${(stderr || stdout).trim().split("\n").slice(-20).join("\n")}`, { cause: error });
    }
    const { stdout } = await run("bash", [SCRIPT, "--print-env"], { env });
    const paths = new Map(
      stdout
        .trim()
        .split("\n")
        .map((line) => {
          const [key = "", value = ""] = line.split("=", 2);
          return [key, value] as const;
        }),
    );
    for (const name of missing) {
      const path = paths.get(`SLUICE_${name.toUpperCase().replaceAll("-", "_")}`);
      if (!path) throw new Error(`scripts/test-tools.sh did not produce ${name}`);
      found[name] = path;
    }
  }
  return found as Record<ToolName, string>;
}

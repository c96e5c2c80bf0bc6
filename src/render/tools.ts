import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** Paths of the renderer binaries; a missing one is looked up on PATH when needed. */
export interface RenderTools {
  kustomize?: string;
  kubectl?: string;
  helm?: string;
}

/** Reads `SLUICE_KUSTOMIZE`, `SLUICE_KUBECTL` and `SLUICE_HELM` from an environment (parsed once at start-up). */
export function toolsFromEnv(env: NodeJS.ProcessEnv): RenderTools {
  const tools: RenderTools = {};
  if (env.SLUICE_KUSTOMIZE) tools.kustomize = env.SLUICE_KUSTOMIZE;
  if (env.SLUICE_KUBECTL) tools.kubectl = env.SLUICE_KUBECTL;
  if (env.SLUICE_HELM) tools.helm = env.SLUICE_HELM;
  return tools;
}

/** The first executable named `name` on `path`, if any. */
export async function findOnPath(name: string, path: string | undefined): Promise<string | undefined> {
  for (const dir of (path ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return undefined;
}

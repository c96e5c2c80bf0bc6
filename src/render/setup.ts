import { DEFAULT_LIMITS, type RenderLimits } from "./render-environment.ts";
import type { RendererContext } from "./context.ts";
import { createScratch, type Scratch } from "./sandbox.ts";
import { findOnPath, toolsFromEnv, type RenderTools } from "./tools.ts";

/** Resolves the renderer binaries once: explicit `SLUICE_*` paths first, then PATH. */
export async function resolveTools(env: NodeJS.ProcessEnv): Promise<RenderTools> {
  const tools = toolsFromEnv(env);
  const [kustomize, kubectl, helm] = await Promise.all([
    tools.kustomize ?? findOnPath("kustomize", env.PATH),
    tools.kubectl ?? findOnPath("kubectl", env.PATH),
    tools.helm ?? findOnPath("helm", env.PATH),
  ]);
  return {
    ...(kustomize ? { kustomize } : {}),
    ...(kubectl ? { kubectl } : {}),
    ...(helm ? { helm } : {}),
  };
}

/** A renderer context for one checkout, with its own scratch home; dispose it when done. */
export async function openRendererContext(
  checkoutRoot: string,
  tools: RenderTools,
  limits: RenderLimits = DEFAULT_LIMITS,
): Promise<RendererContext & { dispose: Scratch["dispose"] }> {
  const { sandbox = "auto", toolMemoryBytes, ...bounds } = limits;
  const scratch = await createScratch(toolMemoryBytes);
  return {
    checkoutRoot,
    tools,
    // The sandbox is probed the first time a renderer runs; plain manifests never need it. In it,
    // the renderer sees the checkout and its scratch home, and nothing else of this machine.
    run: {
      cwd: scratch.home,
      env: scratch.env,
      sandbox,
      readable: [checkoutRoot],
      ...(toolMemoryBytes === undefined ? {} : { memoryBytes: toolMemoryBytes }),
      ...bounds,
    },
    dispose: scratch.dispose,
  };
}

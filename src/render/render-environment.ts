import { access, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Environment, RenderMode } from "../core/config.ts";
import { errorMessage } from "../core/errors.ts";
import { aliasBudget, decodeManifest, parseManifests } from "../core/manifest.ts";
import { sharedParseOptions, type RendererContext } from "./context.ts";
import { RenderError } from "./errors.ts";
import { readCheckoutFile, relativeTo, resolveInside } from "./files.ts";
import { renderHelm } from "./helm.ts";
import { renderKustomize } from "./kustomize.ts";
import { findKustomization } from "./kustomizations.ts";
import { renderPlain, type Rendered } from "./plain.ts";
import type { SandboxSetting } from "./process.ts";

/** Limits that apply to every renderer run. */
export interface RenderLimits {
  timeoutMs: number;
  maxOutputBytes: number;
  /** Whether helm and kustomize run in the namespace sandbox (default `auto`). */
  sandbox?: SandboxSetting;
  /** Address space one helm or kustomize run may take, in bytes (default: no limit of Sluice's own). */
  toolMemoryBytes?: number;
}

/** Defaults: two minutes and 256 MiB of output per render. */
export const DEFAULT_LIMITS: RenderLimits = { timeoutMs: 120_000, maxOutputBytes: 256 * 1024 * 1024 };

/** Picks the renderer for `render: auto`: kustomize, then helm, then plain. */
export async function detectRenderMode(dir: string): Promise<Exclude<RenderMode, "auto">> {
  if (await findKustomization(dir)) return "kustomize";
  try {
    await access(join(dir, "Chart.yaml"));
    return "helm";
  } catch {
    return "plain";
  }
}

/**
 * Renders one environment of one checkout into objects. A missing directory renders to nothing
 * (an environment added or removed by the change) unless `requireInputs`; every failure becomes a
 * problem with a file and line rather than an exception, so one broken environment does not hide
 * the others. A checkout that is not there at all is always an error.
 */
export async function renderEnvironment(
  given: RendererContext,
  env: Environment,
  options: { requireInputs?: boolean } = {},
): Promise<Rendered> {
  const context: RendererContext = { ...given, budget: given.budget ?? aliasBudget() };
  const root = await stat(context.checkoutRoot).catch(() => undefined);
  if (!root?.isDirectory())
    return {
      objects: [],
      problems: [{ file: env.path, line: 1, message: `the checkout ${context.checkoutRoot} is missing; nothing was rendered` }],
      transient: true,
    };
  let target: Awaited<ReturnType<typeof resolveInside>>;
  try {
    target = await resolveInside(context.checkoutRoot, env.path, context.paths);
  } catch (error) {
    return { objects: [], problems: [{ file: env.path, line: 1, message: errorMessage(error) }] };
  }
  if (target.kind === "missing") {
    return {
      objects: [],
      problems: options.requireInputs
        ? [{ file: env.path, line: 1, message: `environment ${env.name}: path ${env.path} does not exist at this commit` }]
        : [],
      missing: true,
    };
  }
  try {
    if (target.kind === "file") {
      const file = relativeTo(context.checkoutRoot, target.absolute);
      const decoded = decodeManifest(await readCheckoutFile(context.checkoutRoot, file, context.run.maxOutputBytes, context.paths));
      if ("problem" in decoded) return { objects: [], problems: [{ file, line: decoded.line ?? 1, message: decoded.problem }] };
      return parseManifests(decoded.text, { file, ...sharedParseOptions(context) });
    }
    const mode = env.render === "auto" ? await detectRenderMode(target.absolute) : env.render;
    switch (mode) {
      case "plain":
        return await renderPlain(context, target.absolute, { ignore: env.ignore, lenient: !env.strict });
      case "kustomize":
        return await renderKustomize(context, target.absolute);
      case "helm":
        return await renderHelm(context, target.absolute, env);
    }
  } catch (error) {
    if (error instanceof RenderError)
      return { objects: [], problems: [error.toProblem()], ...(error.failure === "timeout" ? { transient: true } : {}) };
    return { objects: [], problems: [{ file: env.path, line: 1, message: `rendering failed: ${errorMessage(error)}` }] };
  }
}

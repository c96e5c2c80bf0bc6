import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Environment, RenderMode } from "../core/config.ts";
import { errorMessage } from "../core/errors.ts";
import { parseManifests } from "../core/manifest.ts";
import type { RendererContext } from "./context.ts";
import { RenderError } from "./errors.ts";
import { relativeTo, resolveInside } from "./files.ts";
import { renderHelm } from "./helm.ts";
import { findKustomization, renderKustomize } from "./kustomize.ts";
import { renderPlain, type Rendered } from "./plain.ts";

/** Limits that apply to every renderer run. */
export interface RenderLimits {
  timeoutMs: number;
  maxOutputBytes: number;
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
 * (an environment added or removed by the change); every failure becomes a problem with a file
 * and line rather than an exception, so one broken environment does not hide the others.
 */
export async function renderEnvironment(context: RendererContext, env: Environment): Promise<Rendered> {
  let target: Awaited<ReturnType<typeof resolveInside>>;
  try {
    target = await resolveInside(context.checkoutRoot, env.path);
  } catch (error) {
    return { objects: [], problems: [{ file: env.path, line: 1, message: errorMessage(error) }] };
  }
  if (target.kind === "missing") return { objects: [], problems: [] };
  try {
    if (target.kind === "file") {
      const file = relativeTo(context.checkoutRoot, target.absolute);
      return parseManifests(await readFile(target.absolute, "utf8"), { file });
    }
    const mode = env.render === "auto" ? await detectRenderMode(target.absolute) : env.render;
    switch (mode) {
      case "plain":
        return await renderPlain(context.checkoutRoot, target.absolute, context.run.maxOutputBytes, context.parseCache);
      case "kustomize":
        return await renderKustomize(context, target.absolute);
      case "helm":
        return await renderHelm(context, target.absolute, env);
    }
  } catch (error) {
    if (error instanceof RenderError) return { objects: [], problems: [error.toProblem()] };
    return { objects: [], problems: [{ file: env.path, line: 1, message: `rendering failed: ${errorMessage(error)}` }] };
  }
}

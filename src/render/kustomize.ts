import { access } from "node:fs/promises";
import { join } from "node:path";
import type { SourceProblem } from "../core/errors.ts";
import { parseManifests } from "../core/manifest.ts";
import { RenderError } from "./errors.ts";
import { relativeTo } from "./files.ts";
import type { Rendered } from "./plain.ts";
import { runBounded } from "./process.ts";
import type { RendererContext } from "./context.ts";
import { outputOrThrow, yamlLine } from "./tool-output.ts";

/** File names kustomize accepts for a kustomization, in its order of preference. */
export const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/** The kustomization file in `dir`, if there is one. */
export async function findKustomization(dir: string): Promise<string | undefined> {
  for (const name of KUSTOMIZATION_FILES) {
    try {
      await access(join(dir, name));
      return name;
    } catch {
      // Try the next name.
    }
  }
  return undefined;
}

/**
 * Runs `kustomize build` (or `kubectl kustomize`) on `dir`, with no plugins, exec functions or
 * helm inflation, and reads its output as manifests.
 */
export async function renderKustomize(context: RendererContext, dir: string): Promise<Rendered> {
  const envPath = relativeTo(context.checkoutRoot, dir);
  const kustomization = `${envPath}/${(await findKustomization(dir)) ?? "kustomization.yaml"}`;
  const fallback: SourceProblem = { file: kustomization, line: 1, message: "" };
  const [command, args] = context.tools.kustomize
    ? [context.tools.kustomize, ["build", dir]]
    : context.tools.kubectl
      ? [context.tools.kubectl, ["kustomize", dir]]
      : [undefined, []];
  if (command === undefined) {
    throw new RenderError({ ...fallback, message: "neither kustomize nor kubectl was found; install one or set SLUICE_KUSTOMIZE" }, "missing-tool");
  }
  const result = await runBounded(command, args, context.run);
  const stdout = outputOrThrow(result, "kustomize", fallback, (message) => locateKustomizeError(message, envPath, kustomization), {
    ...context.run,
    checkoutRoot: context.checkoutRoot,
  });
  // kustomize output carries no origin; objects point at the kustomization that produced them.
  const parsed = parseManifests(stdout, { file: kustomization, locate: () => ({ file: kustomization, line: 1 }), ...(context.parseCache ? { cache: context.parseCache } : {}) });
  return { objects: parsed.objects, problems: parsed.problems };
}

/** Maps a kustomize error to the file and line it names (`in File: x`, `yaml: line N`). */
export function locateKustomizeError(message: string, envPath: string, kustomization: string): SourceProblem {
  const line = yamlLine(message) ?? 1;
  // File names are relative to the kustomization being built when the error happened: the
  // innermost base kustomize recursed into, else the environment's own directory.
  const bases = [...message.matchAll(/recursed accumulation of path '([^']+)'/g)];
  const dir = bases.at(-1)?.[1] ?? envPath;
  const inFile = /\bin File: (\S+)/.exec(message)?.[1];
  if (inFile) return { file: inFile.includes("/") ? inFile : `${dir}/${inFile}`, line, message };
  const from = /accumulating resources from '([^']+\.ya?ml)'/.exec(message)?.[1];
  if (from && !from.includes("://") && !message.includes("no such file")) return { file: from.startsWith(dir) ? from : `${dir}/${from}`, line, message };
  return { file: kustomization, line, message };
}

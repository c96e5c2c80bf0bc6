import type { SourceProblem } from "../core/errors.ts";
import { parseManifests } from "../core/manifest.ts";
import { RenderError } from "./errors.ts";
import { inEnvironment, relativeTo } from "./files.ts";
import { findKustomization, readKustomizations, secretGeneratorValues, UnreadableKustomizationError } from "./kustomizations.ts";
import type { Rendered } from "./plain.ts";
import { runBounded } from "./process.ts";
import { sharedParseOptions, type RendererContext } from "./context.ts";
import { outputOrThrow, yamlLine } from "./tool-output.ts";

/**
 * Runs `kustomize build` (or `kubectl kustomize`) on `dir`, with no plugins, exec functions or
 * helm inflation, and reads its output as manifests. A remote base or resource, and a reference
 * outside the checkout, are refused before kustomize runs, whatever the sandbox allows; kustomize's messages are masked with every
 * `secretGenerator` value, since it quotes literals in its errors.
 */
export async function renderKustomize(context: RendererContext, dir: string): Promise<Rendered> {
  const envPath = relativeTo(context.checkoutRoot, dir);
  const kustomization = inEnvironment(envPath, (await findKustomization(dir)) ?? "kustomization.yaml");
  const fallback: SourceProblem = { file: kustomization, line: 1, message: "" };
  const [command, args] = context.tools.kustomize
    ? [context.tools.kustomize, ["build", dir]]
    : context.tools.kubectl
      ? [context.tools.kubectl, ["kustomize", dir]]
      : [undefined, []];
  if (command === undefined) {
    throw new RenderError(
      { ...fallback, message: "neither kustomize nor kubectl was found; install one or set SLUICE_KUSTOMIZE" },
      "missing-tool",
    );
  }
  const { kustomizations, remote, outside } = await readKustomizations(context.checkoutRoot, dir, context.paths).catch((error: unknown) => {
    if (error instanceof UnreadableKustomizationError)
      throw new RenderError({ file: error.file, line: error.line, message: error.reason }, "exit");
    throw error;
  });
  const [firstRemote] = remote;
  if (firstRemote) {
    throw new RenderError(
      {
        file: firstRemote.file,
        line: firstRemote.line,
        message: `remote reference "${firstRemote.ref}" is not allowed: Sluice renders without network access; vendor it into the repository${remote.length > 1 ? ` (${remote.length - 1} more remote references)` : ""}`,
      },
      "exit",
    );
  }
  const [firstOutside] = outside;
  if (firstOutside) {
    throw new RenderError(
      {
        file: firstOutside.file,
        line: firstOutside.line,
        message: `reference "${firstOutside.ref}" leads outside the repository: Sluice renders only what the repository holds${outside.length > 1 ? ` (${outside.length - 1} more references outside it)` : ""}`,
      },
      "exit",
    );
  }
  const result = await runBounded(command, args, context.run);
  const secrets = result.outcome === "exit" ? await secretGeneratorValues(context.checkoutRoot, kustomizations) : [];
  const stdout = outputOrThrow(result, "kustomize", fallback, (message) => locateKustomizeError(message, envPath, kustomization), {
    ...context.run,
    checkoutRoot: context.checkoutRoot,
    secrets,
  });
  // kustomize output carries no origin; objects point at the kustomization that produced them.
  const parsed = parseManifests(stdout, {
    file: kustomization,
    locate: () => ({ file: kustomization, line: 1 }),
    ...sharedParseOptions(context),
  });
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
  if (inFile) return { file: inFile.includes("/") ? inFile : inEnvironment(dir, inFile), line, message };
  const from = /accumulating resources from '([^']+\.ya?ml)'/.exec(message)?.[1];
  if (from && !from.includes("://") && !message.includes("no such file"))
    return { file: from.startsWith(dir) && dir !== "" ? from : inEnvironment(dir, from), line, message };
  return { file: kustomization, line, message };
}

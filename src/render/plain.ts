import { readFile } from "node:fs/promises";
import type { SourceProblem } from "../core/errors.ts";
import { parseManifests, type ManifestObject } from "../core/manifest.ts";
import { sharedParseOptions, type RendererContext } from "./context.ts";
import { listManifestFiles, relativeTo } from "./files.ts";

/** What a renderer produced: the objects, and the problems that kept some from being read. */
export interface Rendered {
  objects: ManifestObject[];
  problems: SourceProblem[];
  /** The failure may not happen again (a timeout): the render must not be cached. */
  transient?: boolean;
}

/** Reads every `*.yaml`, `*.yml` and `*.json` file under `dir` (recursively) as manifests. */
export async function renderPlain(context: RendererContext, dir: string): Promise<Rendered> {
  const { checkoutRoot } = context;
  const maxBytes = context.run.maxOutputBytes;
  const listed = await listManifestFiles(dir);
  const objects: ManifestObject[] = [];
  const problems: SourceProblem[] = [];
  // Sizes are known before anything is read, so an oversized tree is never loaded.
  let total = 0;
  const files = listed.filter(({ path, size }) => {
    total += size;
    if (total > maxBytes && total - size <= maxBytes) {
      problems.push({ file: relativeTo(checkoutRoot, path), line: 1, message: `manifests exceed the limit of ${maxBytes} bytes; this file and later ones were not read` });
    }
    return total <= maxBytes;
  });
  // File order is the object order.
  const texts = await Promise.all(files.map((file) => readFile(file.path, "utf8")));
  files.forEach(({ path }, index) => {
    const text = texts[index] ?? "";
    const file = relativeTo(checkoutRoot, path);
    const result = parseManifests(text, { file, ...sharedParseOptions(context) });
    objects.push(...result.objects);
    problems.push(...result.problems);
  });
  return { objects, problems };
}

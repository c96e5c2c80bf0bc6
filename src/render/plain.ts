import { readFile } from "node:fs/promises";
import type { SourceProblem } from "../core/errors.ts";
import { parseManifests, type ManifestObject } from "../core/manifest.ts";
import { listManifestFiles, relativeTo } from "./files.ts";

/** What a renderer produced: the objects, and the problems that kept some from being read. */
export interface Rendered {
  objects: ManifestObject[];
  problems: SourceProblem[];
}

/** Reads every `*.yaml`, `*.yml` and `*.json` file under `dir` (recursively) as manifests. */
export async function renderPlain(checkoutRoot: string, dir: string, maxBytes: number, cache?: Map<string, unknown>): Promise<Rendered> {
  const files = await listManifestFiles(dir);
  const objects: ManifestObject[] = [];
  const problems: SourceProblem[] = [];
  let total = 0;
  // Read in order, a few at a time: file order is the object order.
  const texts = await Promise.all(files.map((file) => readFile(file, "utf8")));
  files.forEach((path, index) => {
    const text = texts[index] ?? "";
    const file = relativeTo(checkoutRoot, path);
    total += text.length;
    if (total > maxBytes) {
      if (total - text.length <= maxBytes) problems.push({ file, line: 1, message: `manifests exceed the limit of ${maxBytes} bytes; this file and later ones were not read` });
      return;
    }
    const result = parseManifests(text, { file, ...(cache ? { cache } : {}) });
    objects.push(...result.objects);
    problems.push(...result.problems);
  });
  return { objects, problems };
}

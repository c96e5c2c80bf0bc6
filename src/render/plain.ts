import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { SourceProblem } from "../core/errors.ts";
import { parseManifests, type ManifestObject, type ParseResult } from "../core/manifest.ts";
import { sharedParseOptions, type RendererContext } from "./context.ts";
import { listManifestFiles, relativeTo } from "./files.ts";

/** What a renderer produced: the objects, and the problems that kept some from being read. */
export interface Rendered extends ParseResult {
  /** The failure may not happen again (a timeout): the render must not be cached. */
  transient?: boolean;
  /** Things worth knowing that are not errors (files a lenient render skipped). */
  notes?: string[];
}

/** How plain rendering reads a tree. */
export interface PlainOptions {
  /** Paths relative to the checkout that are not read (directories other environments render). */
  ignore?: readonly string[];
  /** Skip files that are not Kubernetes objects (or not YAML) instead of failing on them, with one note. */
  lenient?: boolean;
}

/** Reads every `*.yaml`, `*.yml` and `*.json` file under `dir` (recursively) as manifests. */
export async function renderPlain(context: RendererContext, dir: string, options: PlainOptions = {}): Promise<Rendered> {
  const { checkoutRoot } = context;
  const maxBytes = context.run.maxOutputBytes;
  const ignored = new Set((options.ignore ?? []).map((path) => join(checkoutRoot, path)));
  const listed = await listManifestFiles(dir, ignored);
  const objects: ManifestObject[] = [];
  const problems: SourceProblem[] = [];
  // Sizes are known before anything is read, so an oversized tree is never loaded.
  let total = 0;
  const files = listed.filter(({ path, size }) => {
    total += size;
    if (total > maxBytes && total - size <= maxBytes) {
      problems.push({
        file: relativeTo(checkoutRoot, path),
        line: 1,
        message: `manifests exceed the limit of ${maxBytes} bytes; this file and later ones were not read`,
      });
    }
    return total <= maxBytes;
  });
  // File order is the object order.
  const texts = await Promise.all(files.map((file) => readFile(file.path, "utf8")));
  const skipped: string[] = [];
  files.forEach(({ path }, index) => {
    const text = texts[index] ?? "";
    const file = relativeTo(checkoutRoot, path);
    const result = parseManifests(text, { file, ...sharedParseOptions(context) });
    // As Flux reads a plain path: a file with no Kubernetes object in it (Helm values, a compose
    // file) is not an error there, only where the configuration names the path. YAML that does
    // not parse is an error either way: it may well be a broken manifest.
    if (
      options.lenient &&
      result.objects.length === 0 &&
      result.problems.length > 0 &&
      result.problems.every((p) => p.reason === "not-an-object")
    ) {
      skipped.push(file);
      return;
    }
    objects.push(...result.objects);
    problems.push(...result.problems);
  });
  const notes =
    skipped.length > 0
      ? [`skipped ${skipped.length} file${skipped.length === 1 ? "" : "s"} that hold no Kubernetes objects: ${fileList(skipped)}`]
      : [];
  return { objects, problems, ...(notes.length > 0 ? { notes } : {}) };
}

function fileList(files: readonly string[]): string {
  return files.length <= 5 ? files.join(", ") : `${files.slice(0, 5).join(", ")} and ${files.length - 5} more`;
}

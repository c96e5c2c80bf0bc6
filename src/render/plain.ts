import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { SourceProblem } from "../core/errors.ts";
import { parseManifests, type ManifestObject, type ParseResult } from "../core/manifest.ts";
import { sharedParseOptions, type RendererContext } from "./context.ts";
import { errorMessage } from "../core/errors.ts";
import { decodeManifest } from "../core/manifest.ts";
import { CheckoutPathError, listManifestFiles, readCheckoutFile, relativeTo, type CheckoutPathProblem } from "./files.ts";

/** What a renderer produced: the objects, and the problems that kept some from being read. */
export interface Rendered extends ParseResult {
  /** The failure may not happen again (a timeout): the render must not be cached. */
  transient?: boolean;
  /** Things worth knowing that are not errors (files a lenient render skipped). */
  notes?: string[];
  /** The environment's path does not exist at this commit. */
  missing?: boolean;
}

/** How plain rendering reads a tree. */
export interface PlainOptions {
  /** Paths relative to the checkout that are not read (directories other environments render). */
  ignore?: readonly string[];
  /** Skip files that are not Kubernetes objects (or not YAML) instead of failing on them, with one note. */
  lenient?: boolean;
}

/** What is wrong with a manifest that is a symbolic link, by why it could not be read. */
const LINK_PROBLEMS: Partial<Record<CheckoutPathProblem, string>> = {
  outside: "that leads outside the checkout",
  loop: "in a loop of links",
  special: "to something that is not a regular file (a device or a pipe)",
  missing: "to a file that does not exist",
  directory: "to a directory",
};

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
  // File order is the object order. A link is read only where it leads inside the checkout; any other is named, not skipped.
  const texts = await Promise.all(
    files.map(async ({ path, link }) => {
      const file = relativeTo(checkoutRoot, path);
      try {
        return decodeManifest(link ? await readCheckoutFile(checkoutRoot, file, maxBytes) : await readFile(path));
      } catch (error) {
        // Named, never skipped.
        const why = error instanceof CheckoutPathError ? LINK_PROBLEMS[error.problem] : undefined;
        return { problem: link && why ? `is a symbolic link ${why}; it was not read` : errorMessage(error) };
      }
    }),
  );
  const skipped: string[] = [];
  files.forEach(({ path }, index) => {
    const decoded = texts[index] ?? { text: "" };
    const file = relativeTo(checkoutRoot, path);
    if ("problem" in decoded) {
      problems.push({ file, line: decoded.line ?? 1, message: decoded.problem });
      return;
    }
    const text = decoded.text;
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

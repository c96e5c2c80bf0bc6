import { lstat, readdir, realpath } from "node:fs/promises";
import { join, relative, sep } from "node:path";

const MANIFEST_EXTENSIONS = [".yaml", ".yml", ".json"];
/** Directories never read: VCS and tool metadata, and vendored packages. */
const SKIPPED_DIRS = new Set(["node_modules"]);

/** Whether a file name is a manifest by its extension. */
export function isManifestFile(name: string): boolean {
  const lower = name.toLowerCase();
  return MANIFEST_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * Lists manifest files under `dir` recursively, sorted, as absolute paths. Hidden directories
 * (such as .git and .github) and node_modules are skipped, and so are symbolic links, so that
 * nothing outside the checkout is read.
 */
export async function listManifestFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(current: string): Promise<void> {
    const entries = await readdir(current, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".") && !SKIPPED_DIRS.has(entry.name)) await walk(path);
      } else if (entry.isFile() && isManifestFile(entry.name)) {
        out.push(path);
      }
    }
  }
  await walk(dir);
  return out;
}

/** A path relative to the checkout, with forward slashes. */
export function relativeTo(root: string, path: string): string {
  const rel = relative(root, path);
  return sep === "/" ? rel : rel.split(sep).join("/");
}

/** What a path inside a checkout turned out to be. */
export type PathKind = "directory" | "file" | "missing";

/**
 * Resolves `path` (relative to `root`) and checks that it stays inside the checkout once
 * symbolic links are followed.
 * @throws Error naming the path when it escapes the checkout
 */
export async function resolveInside(root: string, path: string): Promise<{ absolute: string; kind: PathKind }> {
  const absolute = join(root, path);
  try {
    await lstat(absolute);
  } catch {
    return { absolute, kind: "missing" };
  }
  const [realRoot, real] = await Promise.all([realpath(root), realpath(absolute)]);
  if (real !== realRoot && !real.startsWith(realRoot + sep)) {
    throw new Error(`${path} resolves outside the checkout`);
  }
  const stats = await lstat(real);
  return { absolute: real, kind: stats.isDirectory() ? "directory" : "file" };
}

import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { parse } from "yaml";
import type { Environment } from "../core/config.ts";
import { isRecord } from "../core/manifest.ts";
import { findKustomization } from "./kustomize.ts";

/** The files an environment's render reads, and a digest of their paths and contents. */
export interface EnvironmentInputs {
  /** Paths relative to the checkout, sorted. */
  files: string[];
  /** SHA-256 over every path and content: equal digests render equally. */
  digest: string;
}

function isRemote(ref: string): boolean {
  return /^[a-z]+:\/\//i.test(ref) || ref.startsWith("git@") || /^(github\.com|gitlab\.com|bitbucket\.org)\//.test(ref);
}

/** Local paths a kustomization refers to, relative to its directory. */
function kustomizationRefs(doc: unknown): string[] {
  if (!isRecord(doc)) return [];
  const refs: string[] = [];
  const strings = (value: unknown): void => {
    if (Array.isArray(value)) for (const item of value) if (typeof item === "string") refs.push(item);
  };
  for (const field of ["resources", "bases", "components", "crds", "configurations", "transformers", "generators", "validators", "patchesStrategicMerge"]) strings(doc[field]);
  for (const field of ["patches", "patchesJson6902", "replacements"]) {
    const list = doc[field];
    if (Array.isArray(list)) for (const item of list) if (isRecord(item) && typeof item.path === "string") refs.push(item.path);
  }
  for (const field of ["configMapGenerator", "secretGenerator"]) {
    const list = doc[field];
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (!isRecord(item)) continue;
      const listed: unknown[] = [...(Array.isArray(item.files) ? (item.files as unknown[]) : []), ...(Array.isArray(item.envs) ? (item.envs as unknown[]) : []), item.env];
      for (const file of listed) {
        if (typeof file === "string") refs.push(file.includes("=") ? file.slice(file.indexOf("=") + 1) : file);
      }
    }
  }
  if (isRecord(doc.openapi) && typeof doc.openapi.path === "string") refs.push(doc.openapi.path);
  // Inline patches and multi-line strings are not paths.
  return refs.filter((ref) => !ref.includes("\n") && !isRemote(ref));
}

async function kindOf(path: string): Promise<"file" | "directory" | "missing"> {
  try {
    const info = await stat(path);
    return info.isDirectory() ? "directory" : "file";
  } catch {
    return "missing";
  }
}

async function listTree(dir: string, out: Set<string>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.add(join(entry.parentPath, entry.name));
  }
}

/**
 * Collects what an environment's render reads: its whole directory and `watch` paths, and for
 * kustomize, every local base, component and file its kustomizations refer to, transitively.
 * Paths outside the checkout are ignored (the renderers refuse them anyway).
 */
export async function environmentInputs(checkoutRoot: string, env: Environment): Promise<EnvironmentInputs> {
  const root = resolve(checkoutRoot);
  const files = new Set<string>();
  const visited = new Set<string>();
  const insideRoot = (path: string): boolean => path === root || path.startsWith(root + sep);

  async function visit(path: string): Promise<void> {
    if (!insideRoot(path) || visited.has(path)) return;
    visited.add(path);
    const kind = await kindOf(path);
    if (kind === "file") {
      files.add(path);
      return;
    }
    if (kind === "missing") return;
    await listTree(path, files);
    const kustomization = await findKustomization(path);
    if (!kustomization) return;
    let doc: unknown;
    try {
      doc = parse(await readFile(join(path, kustomization), "utf8"));
    } catch {
      return; // The render reports the error; the directory's files are already inputs.
    }
    for (const ref of kustomizationRefs(doc)) await visit(resolve(path, ref));
  }

  await visit(resolve(root, env.path));
  for (const watched of env.watch) await visit(resolve(root, watched));
  const relativeFiles = [...files].map((f) => relative(root, f).split(sep).join("/")).sort();
  const hash = createHash("sha256");
  for (const file of relativeFiles) {
    hash.update(file).update("\0");
    hash.update(createHash("sha256").update(await readFile(join(root, file))).digest()).update("\0");
  }
  return { files: relativeFiles, digest: hash.digest("hex") };
}


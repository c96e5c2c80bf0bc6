import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { join, relative, resolve, sep } from "node:path";
import type { Environment } from "../core/config.ts";
import { relativeTo, resolveInside } from "./files.ts";
import { loadKustomization, localReferences } from "./kustomizations.ts";

/** The files an environment's render reads, and a digest of their paths and contents. */
export interface EnvironmentInputs {
  /** Paths relative to the checkout, sorted: regular files and symbolic links. */
  files: string[];
  /** SHA-256 over every path and content (a link's target for a link): equal digests render equally. */
  digest: string;
  /** Directories read to find them: each at most once, however the kustomizations nest. */
  directoriesRead: number;
}

/**
 * Adds every regular file and symbolic link under `dir` to `out`; links are inputs too, since a
 * render follows them. Returns the links, whose targets are inputs as well. A directory in
 * `listed` was walked already and is not walked again: kustomizations nested in each other or
 * referring to their parents then cost one walk of the tree, not one per kustomization.
 */
async function listTree(dir: string, out: Set<string>, listed: Set<string>): Promise<string[]> {
  const links: string[] = [];
  const pending = [dir];
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    if (listed.has(current)) continue;
    listed.add(current);
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isFile()) out.add(path);
      else if (entry.isDirectory()) pending.push(path);
      else if (entry.isSymbolicLink()) {
        out.add(path);
        links.push(path);
      }
    }
  }
  return links;
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
  const listed = new Set<string>();
  const insideRoot = (path: string): boolean => path === root || path.startsWith(root + sep);

  async function visit(path: string): Promise<void> {
    if (!insideRoot(path) || visited.has(path)) return;
    visited.add(path);
    // The path as named is an input (a link's target is hashed), and so is what it leads to.
    if ((await lstat(path).catch(() => undefined))?.isSymbolicLink()) files.add(path);
    let target: Awaited<ReturnType<typeof resolveInside>>;
    try {
      target = await resolveInside(root, relativeTo(root, path));
    } catch {
      return; // Outside the checkout, a loop or a device: the render refuses it and says so.
    }
    if (target.kind === "file") {
      files.add(target.absolute);
      return;
    }
    if (target.kind === "missing") return;
    for (const link of await listTree(target.absolute, files, listed)) await visit(link);
    // One that cannot be read strictly fails the render, which says why; its directory's files are inputs already.
    const kustomization = await loadKustomization(root, target.absolute).catch(() => undefined);
    if (!kustomization) return; // The render reports what is wrong; the directory's files are already inputs.
    for (const ref of localReferences(kustomization.doc)) await visit(resolve(target.absolute, ref));
  }

  await visit(resolve(root, env.path));
  for (const watched of env.watch) await visit(resolve(root, watched));
  const relativeFiles = [...files].map((f) => relative(root, f).split(sep).join("/")).sort();
  const hash = createHash("sha256");
  for (const file of relativeFiles) {
    hash.update(file).update("\0");
    hash.update(await contentDigest(join(root, file))).update("\0");
  }
  return { files: relativeFiles, digest: hash.digest("hex"), directoriesRead: listed.size };
}

/** A file's content digest; a link's is of its target, so a change made only through a link changes it. */
async function contentDigest(path: string): Promise<Buffer> {
  const info = await lstat(path);
  if (info.isSymbolicLink())
    return createHash("sha256")
      .update("link\0")
      .update(await readlink(path))
      .digest();
  if (!info.isFile()) return createHash("sha256").update(`special\0${info.mode}`).digest();
  const hash = createHash("sha256").update("file\0");
  await pipeline(createReadStream(path), hash);
  return hash.digest();
}

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { join, relative, resolve, sep } from "node:path";
import type { Environment } from "../core/config.ts";
import { readCheckoutFile, relativeTo, resolveInside } from "./files.ts";
import { findKustomization, KUSTOMIZATION_FILES, loadKustomization, localReferences } from "./kustomizations.ts";

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
  let chartDirectories = 0;
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
    if (path === envPath && (await rendersAsHelm(target.absolute, env))) {
      // Walked apart: a watched path or a link into the chart must still find every file of what it names.
      const chart = new Set<string>();
      const chartListed = new Set<string>();
      const links = await listTree(target.absolute, chart, chartListed);
      chartDirectories += chartListed.size;
      const read = await chartReads(root, target.absolute, chart, env);
      for (const file of read) files.add(file);
      for (const link of links) if (read.has(link)) await visit(link);
      return;
    }
    for (const link of await listTree(target.absolute, files, listed)) await visit(link);
    // One that cannot be read strictly fails the render, which says why; its directory's files are inputs already.
    const kustomization = await loadKustomization(root, target.absolute).catch(() => undefined);
    if (!kustomization) return; // The render reports what is wrong; the directory's files are already inputs.
    for (const ref of localReferences(kustomization.doc)) await visit(resolve(target.absolute, ref));
  }

  const envPath = resolve(root, env.path);
  await visit(envPath);
  for (const watched of env.watch) await visit(resolve(root, watched));
  const relativeFiles = [...files].map((f) => relative(root, f).split(sep).join("/")).sort();
  const hash = createHash("sha256");
  for (const file of relativeFiles) {
    hash.update(file).update("\0");
    hash.update(await contentDigest(join(root, file))).update("\0");
  }
  return { files: relativeFiles, digest: hash.digest("hex"), directoriesRead: listed.size + chartDirectories };
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

/** Whether the environment's directory renders with helm: `render: helm`, or `auto` with a Chart.yaml and no kustomization. */
async function rendersAsHelm(dir: string, env: Environment): Promise<boolean> {
  if (env.render === "helm") return true;
  if (env.render !== "auto" || (await findKustomization(dir)) !== undefined) return false;
  return (await lstat(join(dir, "Chart.yaml")).catch(() => undefined)) !== undefined;
}

/** Files at a chart's top that count whatever its .helmignore says: helm's own, and those that decide `render: auto`. */
const CHART_FILES = new Set([
  "Chart.yaml",
  "Chart.lock",
  "requirements.yaml",
  "requirements.lock",
  "values.yaml",
  ".helmignore",
  ...KUSTOMIZATION_FILES,
]);
/** A .helmignore is a few kilobytes; a larger one is not read, and every file of the chart counts. */
const MAX_HELMIGNORE_BYTES = 1024 * 1024;

/**
 * The files of a chart (listed in `chart`, absolute) that rendering `env` reads. helm loads every
 * file of the chart that its .helmignore does not exclude (templates may read any of them through
 * `.Files`, or print the whole context), so only an excluded file is left out, unless it is one of
 * the environment's own values files, which `helm template --values` reads by path. The values
 * files of the other environments of a chart (#28) then stay out once .helmignore lists them.
 * A link kept leads to inputs too; helm does not follow one it skips.
 */
async function chartReads(root: string, dir: string, chart: ReadonlySet<string>, env: Environment): Promise<Set<string>> {
  const ignored = await helmIgnore(root, dir);
  if (!ignored) return new Set(chart);
  const own = new Set<string>();
  for (const values of env.helm?.values ?? []) {
    own.add(resolve(dir, values));
    // Followed as the renderer follows it, inside the chart: its target is an input too.
    const target = await resolveInside(dir, values).catch(() => undefined);
    if (target?.kind === "file") own.add(target.absolute);
  }
  const read = new Set<string>();
  for (const file of chart) {
    const path = relative(dir, file).split(sep);
    const keep =
      own.has(file) ||
      (path.length === 1 && CHART_FILES.has(path[0] ?? "")) ||
      !path.some((_, index) => ignored(path.slice(0, index + 1).join("/"), index < path.length - 1));
    if (keep) read.add(file);
  }
  return read;
}

/** One .helmignore rule, as helm reads it. */
interface IgnoreRule {
  pattern: RegExp;
  /** Matched against the base name only (a rule without a slash). */
  base: boolean;
  /** Matches directories only (a rule ending in a slash). */
  directory: boolean;
}

/**
 * Whether helm's loader skips a path of the chart in `dir` (relative, with forward slashes), as
 * its `ignore` package decides: the chart's .helmignore plus helm's default `templates/.?*`.
 * Undefined when that cannot be told exactly (the file is unreadable, or a rule is one helm
 * refuses or whose meaning this does not copy): then nothing is left out.
 */
async function helmIgnore(root: string, dir: string): Promise<((path: string, directory: boolean) => boolean) | undefined> {
  let text = "";
  const file = relativeTo(root, join(dir, ".helmignore"));
  const target = await resolveInside(root, file).catch(() => undefined);
  if (!target) return undefined;
  if (target.kind === "file") {
    const data = await readCheckoutFile(root, file, MAX_HELMIGNORE_BYTES).catch(() => undefined);
    if (!data) return undefined;
    text = data.toString("utf8");
  } else if (target.kind === "directory") return undefined;
  const rules: IgnoreRule[] = [];
  for (const line of ["templates/.?*", ...text.split("\n")]) {
    let rule = line.trim();
    if (rule === "" || rule.startsWith("#")) continue;
    // Negated rules ignore more in helm, not less: skipping them keeps every file they touch.
    if (rule.startsWith("!")) continue;
    if (rule.includes("**")) return undefined;
    const directory = rule.endsWith("/");
    if (directory) rule = rule.slice(0, -1);
    const base = !rule.includes("/");
    const pattern = goGlob(rule.startsWith("/") ? rule.slice(1) : rule);
    if (!pattern) return undefined;
    rules.push({ pattern, base, directory });
  }
  return (path, isDirectory) =>
    rules.some((rule) => (!rule.directory || isDirectory) && rule.pattern.test(rule.base ? (path.split("/").at(-1) ?? path) : path));
}

/**
 * Go's `filepath.Match` pattern as a regular expression: `*` and `?` never match a slash, `[...]`
 * is a class (`^` negates it), `\\` escapes. Undefined for a pattern Go would refuse.
 */
function goGlob(glob: string): RegExp | undefined {
  let out = "";
  for (let i = 0; i < glob.length; i += 1) {
    const char = glob[i] ?? "";
    if (char === "*") out += "[^/]*";
    else if (char === "?") out += "[^/]";
    else if (char === "\\") {
      const next = glob[(i += 1)];
      if (next === undefined) return undefined;
      out += escapeRegExp(next);
    } else if (char === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) return undefined;
      const body = glob.slice(i + 1, end);
      if (body.includes("\\") || body.includes("[")) return undefined;
      const negated = body.startsWith("^");
      const ranges = (negated ? body.slice(1) : body).replace(/[\]\\^]/g, "\\$&");
      if (ranges === "") return undefined;
      out += negated ? `[^/${ranges}]` : `[${ranges}]`;
      i = end;
    } else out += escapeRegExp(char);
  }
  try {
    return new RegExp(`^${out}$`);
  } catch {
    return undefined; // A range out of order, which Go refuses as well.
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

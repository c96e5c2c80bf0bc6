import { createHash } from "node:crypto";
import { createReadStream, type Dirent, type Stats } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { join, relative, resolve, sep } from "node:path";
import type { Environment } from "../core/config.ts";
import { PathMemo, readCheckoutFile, relativeTo, remembered, resolveInside } from "./files.ts";
import { KUSTOMIZATION_FILES, loadKustomization, localReferences, type Kustomization } from "./kustomizations.ts";

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
async function listTree(dir: string, out: Set<string>, listed: Set<string>, reads: CheckoutReads): Promise<string[]> {
  const links: string[] = [];
  const pending = [dir];
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    if (listed.has(current)) continue;
    listed.add(current);
    for (const entry of await reads.directory(current)) {
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
export async function environmentInputs(
  checkoutRoot: string,
  env: Environment,
  reads: CheckoutReads = new CheckoutReads(),
): Promise<EnvironmentInputs> {
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
    if ((await reads.lstat(path))?.isSymbolicLink()) files.add(path);
    const target = await reads.resolve(root, relativeTo(root, path));
    // Outside the checkout, a loop or a device: the render refuses it and says so.
    if (!target) return;
    if (target.kind === "file") {
      files.add(target.absolute);
      return;
    }
    if (target.kind === "missing") return;
    if (path === envPath && (await rendersAsHelm(target.absolute, env, reads))) {
      // Walked apart: a watched path or a link into the chart must still find every file of what it names.
      const { chart, links, directories } = await reads.chart(target.absolute);
      chartDirectories += directories;
      const read = await chartReads(root, target.absolute, chart, env, reads);
      for (const file of read) files.add(file);
      for (const link of links) if (read.has(link)) await visit(link);
      return;
    }
    for (const link of await listTree(target.absolute, files, listed, reads)) await visit(link);
    // One that cannot be read strictly fails the render, which says why; its directory's files are inputs already.
    const kustomization = await reads.kustomization(root, target.absolute);
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
    hash.update(await reads.digest(join(root, file))).update("\0");
  }
  return { files: relativeFiles, digest: hash.digest("hex"), directoriesRead: listed.size + chartDirectories };
}

/** Where a path of a checkout leads. */
type Resolved = Awaited<ReturnType<typeof resolveInside>>;

/** Files up to this size are read whole to be hashed; larger ones are streamed. */
const READ_WHOLE_BYTES = 1024 * 1024;

/**
 * What reading the inputs of several environments of one checkout shares: each file's digest, each
 * chart's listing and .helmignore, read once however many environments use them (500 releases of
 * one chart, 500 overlays of one base). Only for a checkout whose files do not change while it is
 * read (the app's checkouts are named after their commit); a fresh one per read otherwise.
 */
export class CheckoutReads {
  readonly #digests = new Map<string, Promise<Buffer>>();
  readonly #charts = new Map<string, Promise<{ chart: ReadonlySet<string>; links: readonly string[]; directories: number }>>();
  readonly #ignores = new Map<string, Promise<HelmIgnore | undefined>>();
  readonly #directories = new Map<string, Promise<Dirent[]>>();
  readonly #paths = new PathMemo();
  readonly #resolved = new Map<string, Promise<Resolved | undefined>>();
  readonly #kustomizations = new Map<string, Promise<Kustomization | undefined>>();

  /** What is at `path` (a link itself, not its target); undefined when nothing is. */
  lstat(path: string): Promise<Stats | undefined> {
    return this.#paths.lstat(path);
  }

  /** Where `path` (relative to `root`) leads inside the checkout; undefined when it leaves it, loops or is a device. */
  resolve(root: string, path: string): Promise<Resolved | undefined> {
    return remembered(this.#resolved, `${root}\0${path}`, () => resolveInside(root, path, this.#paths).catch(() => undefined));
  }

  /** The kustomization in `dir`; undefined when there is none or it cannot be read (the render says why). */
  kustomization(root: string, dir: string): Promise<Kustomization | undefined> {
    return remembered(this.#kustomizations, dir, () => loadKustomization(root, dir, this.#paths).catch(() => undefined));
  }

  /** Directories listed and files read so far: each at most once. */
  readonly counts = { directories: 0, files: 0 };

  /** A directory's entries. */
  directory(dir: string): Promise<Dirent[]> {
    return remembered(this.#directories, dir, () => {
      this.counts.directories += 1;
      return readdir(dir, { withFileTypes: true });
    });
  }

  /** A file's content digest; a link's is of its target, so a change made only through a link changes it. */
  digest(path: string): Promise<Buffer> {
    return remembered(this.#digests, path, () => {
      this.counts.files += 1;
      return contentDigest(path);
    });
  }

  /** Every file and link of the chart in `dir` (absolute), and how many directories were read to list them. */
  chart(dir: string): Promise<{ chart: ReadonlySet<string>; links: readonly string[]; directories: number }> {
    return remembered(this.#charts, dir, async () => {
      const chart = new Set<string>();
      const listed = new Set<string>();
      const links = await listTree(dir, chart, listed, this);
      return { chart, links, directories: listed.size };
    });
  }

  /** The chart's .helmignore as helm reads it (see {@link helmIgnore}). */
  helmIgnore(root: string, dir: string): Promise<HelmIgnore | undefined> {
    return remembered(this.#ignores, dir, () => helmIgnore(root, dir));
  }
}

async function contentDigest(path: string): Promise<Buffer> {
  const info = await lstat(path);
  if (info.isSymbolicLink())
    return createHash("sha256")
      .update("link\0")
      .update(await readlink(path))
      .digest();
  if (!info.isFile()) return createHash("sha256").update(`special\0${info.mode}`).digest();
  const hash = createHash("sha256").update("file\0");
  if (info.size <= READ_WHOLE_BYTES) hash.update(await readFile(path));
  else await pipeline(createReadStream(path), hash);
  return hash.digest();
}

/** Whether the environment's directory renders with helm: `render: helm`, or `auto` with a Chart.yaml and no kustomization. */
async function rendersAsHelm(dir: string, env: Environment, reads: CheckoutReads): Promise<boolean> {
  if (env.render === "helm") return true;
  if (env.render !== "auto") return false;
  for (const name of KUSTOMIZATION_FILES) if (await reads.lstat(join(dir, name))) return false;
  return (await reads.lstat(join(dir, "Chart.yaml"))) !== undefined;
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
async function chartReads(
  root: string,
  dir: string,
  chart: ReadonlySet<string>,
  env: Environment,
  reads: CheckoutReads,
): Promise<Set<string>> {
  const ignored = await reads.helmIgnore(root, dir);
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

/** Whether helm skips a path of a chart (relative, with forward slashes). */
type HelmIgnore = (path: string, directory: boolean) => boolean;

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
async function helmIgnore(root: string, dir: string): Promise<HelmIgnore | undefined> {
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

import type { Stats } from "node:fs";
import { lstat, readdir, readFile, readlink, realpath } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";

const MANIFEST_EXTENSIONS = [".yaml", ".yml", ".json"];
/** Directories never read: hidden ones (VCS and tool metadata such as .git and .github) and vendored packages. */
export function isSkippedDirectory(name: string): boolean {
  return name.startsWith(".") || name === "node_modules";
}
/** Symbolic links followed in one path before it counts as a loop (the kernel's own limit). */
const MAX_LINK_HOPS = 40;

/** Whether a file name is a manifest by its extension. */
export function isManifestFile(name: string): boolean {
  const lower = name.toLowerCase();
  return MANIFEST_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** A manifest file found under a directory, with its size; a symbolic link's is known only once it is read. */
export interface ListedFile {
  path: string;
  size: number;
  /** A symbolic link, to be read only through {@link readCheckoutFile}, which follows it inside the checkout or refuses. */
  link?: boolean;
}

/**
 * Lists manifest files under `dir` recursively, sorted, as absolute paths with their sizes. Hidden
 * directories (such as .git and .github) and node_modules are skipped, and so is everything that
 * is not a regular file, a directory or a link named like a manifest (devices, pipes). Links are
 * listed as links, not followed here. Paths in `ignored` (absolute) are not listed.
 */
export async function listManifestFiles(dir: string, ignored: ReadonlySet<string> = new Set()): Promise<ListedFile[]> {
  const out: ListedFile[] = [];
  async function walk(current: string): Promise<void> {
    const entries = await readdir(current, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(current, entry.name);
      if (ignored.has(path)) continue;
      if (entry.isDirectory()) {
        if (!isSkippedDirectory(entry.name)) await walk(path);
      } else if (entry.isFile() && isManifestFile(entry.name)) {
        out.push({ path, size: (await lstat(path)).size });
      } else if (entry.isSymbolicLink() && isManifestFile(entry.name)) {
        out.push({ path, size: 0, link: true });
      }
    }
  }
  await walk(dir);
  return out;
}

/** A file of an environment, by its path in the checkout: `envs/prod/Chart.yaml`, or `Chart.yaml` at the root. */
export function inEnvironment(envPath: string, file: string): string {
  return envPath === "" || envPath === "." ? file : `${envPath}/${file}`;
}

/** A path relative to the checkout, with forward slashes. */
export function relativeTo(root: string, path: string): string {
  const rel = relative(root, path);
  return sep === "/" ? rel : rel.split(sep).join("/");
}

/** How paths are looked at while they are resolved: `lstat` is undefined where nothing is. */
export interface PathReads {
  lstat(path: string): Promise<Stats | undefined>;
  readlink(path: string): Promise<string>;
  realpath(path: string): Promise<string>;
}

/** Errors that say nothing is at a path: anything else (an I/O error) is a failure, never "missing". */
const NOTHING_THERE = new Set(["ENOENT", "ENOTDIR", "ENAMETOOLONG"]);

/** The system itself, asked every time. */
export const SYSTEM_PATHS: PathReads = {
  lstat: (path) =>
    lstat(path).catch((error: unknown) => {
      if (NOTHING_THERE.has((error as NodeJS.ErrnoException).code ?? "")) return undefined;
      throw error;
    }),
  readlink: (path) => readlink(path),
  realpath: (path) => realpath(path),
};

/**
 * The system, each path asked once: for a checkout that does not change while it is read (one
 * render, or the app's checkouts, which are named after their commit). Resolving every file of an
 * environment walks the same directories again and again; this walks each once.
 */
export class PathMemo implements PathReads {
  readonly #stats = new Map<string, Promise<Stats | undefined>>();
  readonly #links = new Map<string, Promise<string>>();
  readonly #real = new Map<string, Promise<string>>();
  readonly #system: PathReads;

  constructor(system: PathReads = SYSTEM_PATHS) {
    this.#system = system;
  }

  lstat(path: string): Promise<Stats | undefined> {
    return remembered(this.#stats, path, () => this.#system.lstat(path));
  }

  readlink(path: string): Promise<string> {
    return remembered(this.#links, path, () => this.#system.readlink(path));
  }

  realpath(path: string): Promise<string> {
    return remembered(this.#real, path, () => this.#system.realpath(path));
  }
}

/** The value kept under `key`, made once; a failure is not kept, so the next caller tries again. */
export function remembered<T>(memo: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  const known = memo.get(key);
  if (known) return known;
  const made = make();
  memo.set(key, made);
  made.catch(() => memo.delete(key));
  return made;
}

/**
 * Where a path inside a checkout leads once every symbolic link on the way is followed; `real` is
 * under the root as given, with no link left in it.
 */
export type Resolution = { kind: "inside"; real: string; exists: boolean } | { kind: "outside"; via: string } | { kind: "loop" };

/**
 * Follows `path` (relative to `root`) one component at a time, as the kernel does, and says whether
 * it stays inside the checkout. Unlike a lexical check, a link that climbs through another link
 * (`s -> ../..`, then `leak -> s/../../etc/passwd`) is seen for what it is. An absolute link
 * target is outside by definition: a repository cannot know where it is checked out.
 */
export async function resolveInCheckout(root: string, path: string, paths: PathReads = SYSTEM_PATHS): Promise<Resolution> {
  const realRoot = await paths.realpath(root);
  const pending = path.split("/");
  const current: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift() ?? "";
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (current.length === 0) return { kind: "outside", via: path };
      current.pop();
      continue;
    }
    const next = join(realRoot, ...current, part);
    const info = await paths.lstat(next);
    // Nothing there: the rest cannot lead anywhere else.
    if (!info) return { kind: "inside", real: join(root, ...current, part, ...pending), exists: false };
    if (info.isSymbolicLink()) {
      hops += 1;
      if (hops > MAX_LINK_HOPS) return { kind: "loop" };
      const target = await paths.readlink(next);
      if (isAbsolute(target)) return { kind: "outside", via: relativeTo(realRoot, next) };
      pending.unshift(...target.split("/"));
      continue;
    }
    current.push(part);
  }
  return { kind: "inside", real: join(root, ...current), exists: true };
}

/** Why a path of a checkout cannot be read. */
export type CheckoutPathProblem = "missing" | "outside" | "loop" | "special" | "directory" | "too-large" | "unreadable";

/** A path of a checkout that may not be read: it is missing, leaves the checkout, loops, or is not a regular file. */
export class CheckoutPathError extends Error {
  /** The path as the repository names it. */
  readonly path: string;
  readonly problem: CheckoutPathProblem;

  constructor(path: string, problem: CheckoutPathProblem, message: string) {
    super(`${path} ${message}`);
    this.name = "CheckoutPathError";
    this.path = path;
    this.problem = problem;
  }
}

/** What a path inside a checkout turned out to be. */
export type PathKind = "directory" | "file" | "missing";

/**
 * Resolves `path` (relative to `root`) and checks that it stays inside the checkout once
 * symbolic links are followed. Anything but a directory or a regular file is refused.
 * @throws CheckoutPathError naming the path when it escapes the checkout, loops or is a device
 */
export async function resolveInside(
  root: string,
  path: string,
  paths: PathReads = SYSTEM_PATHS,
): Promise<{ absolute: string; kind: PathKind; size: number }> {
  const resolved = await resolveInCheckout(root, path, paths).catch((error: unknown) => {
    // An I/O error on the way: where the path leads is unknown, so it is refused, naming the error, not the machine's path.
    throw new CheckoutPathError(path, "unreadable", `cannot be followed: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
  });
  if (resolved.kind === "outside") throw new CheckoutPathError(path, "outside", "resolves outside the checkout");
  if (resolved.kind === "loop") throw new CheckoutPathError(path, "loop", "is a loop of symbolic links");
  if (!resolved.exists) return { absolute: resolved.real, kind: "missing", size: 0 };
  const info = await paths.lstat(resolved.real);
  if (!info) return { absolute: resolved.real, kind: "missing", size: 0 };
  if (info.isDirectory()) return { absolute: resolved.real, kind: "directory", size: 0 };
  if (info.isFile()) return { absolute: resolved.real, kind: "file", size: info.size };
  throw new CheckoutPathError(path, "special", "is neither a regular file nor a directory");
}

/**
 * Reads a regular file of a checkout, following links only while they stay inside it, and never
 * more than `maxBytes`: a device, a pipe or an oversized file is refused before it is opened.
 * @throws CheckoutPathError naming the path
 */
export async function readCheckoutFile(root: string, path: string, maxBytes: number, paths: PathReads = SYSTEM_PATHS): Promise<Buffer> {
  const target = await resolveInside(root, path, paths);
  if (target.kind === "missing") throw new CheckoutPathError(path, "missing", "does not exist");
  if (target.kind === "directory") throw new CheckoutPathError(path, "directory", "is a directory, not a file");
  if (target.size > maxBytes)
    throw new CheckoutPathError(path, "too-large", `is ${target.size} bytes, over the limit of ${maxBytes} bytes`);
  return readFile(target.absolute);
}

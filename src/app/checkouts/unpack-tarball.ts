import { constants as fsConstants, createWriteStream } from "node:fs";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, relative, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract as tarExtract, type Header } from "tar-stream";
import { errorMessage } from "../../core/errors.ts";
import { ArchiveTree, ArchiveTreeError, archivePathParts, type ArchiveNode, type ArchiveResolution } from "../../core/archive-tree.ts";

/** Limits on what one tarball may unpack to. */
export interface ExtractLimits {
  /** Bytes written at the most, the copies that stand in for symbolic links included. */
  maxBytes: number;
  /** Entries at the most: files, directories and links, and the copies that stand in for links. */
  maxFiles: number;
  /** Compressed bytes read at the most (default `maxBytes`): a download is cut off past it. */
  maxArchiveBytes?: number;
}

/** A tarball that is unsafe or too large to unpack; names the entry. */
export class UnsafeArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeArchiveError";
  }
}

/** Strips GitHub's top-level `owner-repo-sha/` directory from an entry name. */
function stripTop(name: string): string {
  const slash = name.indexOf("/");
  return slash < 0 ? "" : name.slice(slash + 1);
}

/** Whether `path` is `root` or lies under it. */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** Steps taken following one archive's symbolic links at the most, all paths together. */
const MAX_LINK_STEPS = 100_000;
/** Directories deep one entry may be at the most; Kubernetes repositories are a few levels deep. */
const MAX_DEPTH = 64;
/** Bytes one entry's path may take at the most. */
const MAX_PATH_BYTES = 1024;

/**
 * Unpacks a gzipped GitHub tarball into `root` (which must exist and be empty) as a tree of
 * regular files and directories only. Refuses absolute names, `..` segments, backslashes, hard
 * links, device files, duplicate entries and entries under a link, and stops past `maxBytes` or
 * `maxFiles` (every entry counts). Symbolic links are never made: each is followed through the
 * archive's own tree, in memory, and what it leads to is copied into its place; one that leads
 * outside the checkout, even by way of other links, refuses the whole archive. A renderer then
 * has no link to follow, whatever its own path handling does. On error, what was written is left
 * for the caller to remove.
 */
export async function extractTarball(
  archive: Buffer | Readable,
  root: string,
  limits: ExtractLimits,
): Promise<{ files: number; bytes: number }> {
  const unpacking: Unpacking = {
    root,
    budget: new Budget(limits),
    directories: new Directories(),
    tree: new ArchiveTree({ maxHops: MAX_LINK_STEPS }),
    raws: new Map(),
  };
  const extractor = tarExtract();
  const done = unpackEntries(extractor, unpacking);
  const bytes = Buffer.isBuffer(archive) ? Readable.from([archive]) : archive;
  const source = pipeline(bytes, sizeLimit(limits.maxArchiveBytes ?? limits.maxBytes), createGunzip(), extractor);
  // Whichever fails first decides; stop the other.
  try {
    await Promise.all([done, source]);
  } catch (error) {
    extractor.destroy();
    if (error instanceof UnsafeArchiveError) throw error;
    throw new UnsafeArchiveError(`tarball cannot be read: ${errorMessage(error)}`);
  }
  const { tree, budget, raws, directories } = unpacking;
  await new LinkCopier(tree, root, budget, raws, directories).copyAll();
  return { files: budget.files, bytes: budget.bytes };
}

/** What unpacking one archive keeps track of while its entries stream by. */
interface Unpacking {
  root: string;
  budget: Budget;
  directories: Directories;
  /** The archive's tree as read so far, links included, which are followed once it is all read. */
  tree: ArchiveTree;
  /** The name in the archive of each link, by its path in the tree, for messages. */
  raws: Map<string, string>;
}

/** One entry of a tar stream: its header, and its content to read or skip. */
type TarEntry = ReturnType<typeof tarExtract> extends AsyncIterable<infer T> ? T : never;

/** Where one entry goes: its name in the archive, its name in the checkout, and its path on disk. */
export interface EntryPath {
  raw: string;
  name: string;
  target: string;
}

/**
 * Where one entry's name puts it in the checkout at `root`: undefined for metadata (pax headers,
 * such as the commit id GitHub's tarballs start with) and for the top-level directory.
 * @throws UnsafeArchiveError naming the entry when it would escape the checkout or its path is too deep or too long
 */
export function entryPath(header: { name: string; type: string }, root: string): EntryPath | undefined {
  const raw = header.name;
  if (header.type === "pax-global-header" || header.type === "pax-header") return undefined;
  const name = stripTop(raw);
  if (name === "") return undefined;
  if (isAbsolute(raw) || name.split("/").includes("..")) throw new UnsafeArchiveError(`tarball entry "${raw}" escapes the checkout`);
  if (archivePathParts(name).length > MAX_DEPTH)
    throw new UnsafeArchiveError(`tarball entry "${raw}" is more than ${MAX_DEPTH} directories deep`);
  if (Buffer.byteLength(name) > MAX_PATH_BYTES)
    throw new UnsafeArchiveError(`tarball entry "${raw.slice(0, 80)}…" has a path longer than ${MAX_PATH_BYTES} bytes`);
  const target = resolve(root, normalize(name));
  if (!inside(root, target)) throw new UnsafeArchiveError(`tarball entry "${raw}" escapes the checkout`);
  return { raw, name, target };
}

/**
 * What one entry becomes in the archive's tree: a directory, a file, or a symbolic link whose
 * target is inside the checkout at `root`.
 * @throws UnsafeArchiveError naming the entry for any other type (hard links, devices, fifos) and
 *   for a symbolic link with an empty or absolute target, or one that points outside the checkout
 */
export function entryNode(header: Pick<Header, "type" | "size" | "linkname">, path: EntryPath, root: string): ArchiveNode {
  switch (header.type) {
    case "directory":
      return { kind: "directory" };
    case "file":
    case "contiguous-file":
      return { kind: "file", size: header.size };
    case "symlink": {
      // tar-stream gives null for an empty link name, whatever its types say.
      const link = (header.linkname as string | null | undefined) ?? "";
      if (link === "") throw new UnsafeArchiveError(`tarball symlink "${path.raw}" has an empty target`);
      const pointsTo = resolve(dirname(path.target), link);
      if (isAbsolute(link) || !inside(root, pointsTo))
        throw new UnsafeArchiveError(`tarball symlink "${path.raw}" points outside the checkout (${link})`);
      return { kind: "link", target: link };
    }
    default:
      throw new UnsafeArchiveError(`tarball entry "${path.raw}" is a ${header.type}, which a checkout may not contain`);
  }
}

/** Reads every entry of the archive, checks it, counts it, and writes it (or notes its link). */
async function unpackEntries(extractor: AsyncIterable<TarEntry>, unpacking: Unpacking): Promise<void> {
  for await (const entry of extractor) {
    const path = entryPath(entry.header, unpacking.root);
    if (path === undefined) {
      entry.resume();
      continue;
    }
    unpacking.budget.entry();
    await unpackEntry(entry, path, entryNode(entry.header, path, unpacking.root), unpacking);
  }
}

/** Adds one checked entry to the tree and writes it: a directory or file on disk, a link in the tree only. */
async function unpackEntry(entry: TarEntry, path: EntryPath, node: ArchiveNode, unpacking: Unpacking): Promise<void> {
  const { raw, name, target } = path;
  addTo(unpacking.tree, raw, name, node);
  switch (node.kind) {
    case "directory":
      await unpacking.directories.make(target);
      entry.resume();
      return;
    case "file":
      unpacking.budget.file(node.size);
      await unpacking.directories.make(dirname(target));
      // `wx` fails on an existing path: nothing already on disk is ever written over.
      await pipeline(entry, createWriteStream(target, { mode: 0o644, flags: "wx" })).catch((error: unknown) => {
        throw new UnsafeArchiveError(`tarball entry "${raw}" cannot be written: ${errorMessage(error)}`);
      });
      return;
    case "link":
      unpacking.raws.set(archivePathParts(name).join("/"), raw);
      entry.resume();
      return;
  }
}

/** Passes the compressed bytes through, failing past `maxBytes`: a download is cut off there. */
function sizeLimit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > maxBytes) callback(new UnsafeArchiveError(`tarball is larger than ${maxBytes} bytes`));
      else callback(null, chunk);
    },
  });
}

/** Adds an entry to the archive's tree, naming the entry as the archive does when it is refused. */
function addTo(tree: ArchiveTree, raw: string, name: string, node: ArchiveNode): void {
  try {
    tree.add(name, node);
  } catch (error) {
    if (error instanceof ArchiveTreeError) throw new UnsafeArchiveError(`tarball entry "${raw}" is refused: ${error.message}`);
    throw error;
  }
}

/** The directories made so far: each is made once, however many entries it holds. */
class Directories {
  readonly #made = new Set<string>();

  async make(dir: string): Promise<void> {
    if (this.#made.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.#made.add(dir);
  }
}

/** What one archive may still write: entries, files and bytes, copies for links included. */
class Budget {
  files = 0;
  bytes = 0;
  #entries = 0;
  readonly #limits: ExtractLimits;

  constructor(limits: ExtractLimits) {
    this.#limits = limits;
  }

  entry(): void {
    this.#entries += 1;
    if (this.#entries > this.#limits.maxFiles) throw new UnsafeArchiveError(`tarball has more than ${this.#limits.maxFiles} entries`);
  }

  file(size: number): void {
    this.files += 1;
    this.bytes += size;
    if (this.bytes > this.#limits.maxBytes) throw new UnsafeArchiveError(`tarball unpacks to more than ${this.#limits.maxBytes} bytes`);
  }
}

/** Puts a copy of what each symbolic link leads to in the link's place. */
class LinkCopier {
  readonly #tree: ArchiveTree;
  readonly #root: string;
  readonly #budget: Budget;
  readonly #raws: ReadonlyMap<string, string>;
  readonly #directories: Directories;
  readonly #resolved = new Map<string, Exclude<ArchiveResolution, { kind: "outside" | "loop" }>>();

  constructor(tree: ArchiveTree, root: string, budget: Budget, raws: ReadonlyMap<string, string>, directories: Directories) {
    this.#tree = tree;
    this.#root = root;
    this.#budget = budget;
    this.#raws = raws;
    this.#directories = directories;
  }

  /** Follows every link first, so an archive is refused before any copy is made; then copies. */
  async copyAll(): Promise<void> {
    const links = this.#tree.links();
    // Every link that leads out or loops is refused before one that would merely copy without end.
    for (const link of links) this.#resolve(link);
    for (const link of links) {
      const resolved = this.#resolve(link);
      if (resolved.kind === "directory" && (resolved.real === "" || link === resolved.real || link.startsWith(`${resolved.real}/`)))
        throw new UnsafeArchiveError(`tarball symlink "${this.#raws.get(link) ?? link}" leads to a directory that contains it, a loop`);
    }
    for (const link of links) await this.#copyLink(link, link, []);
  }

  #resolve(path: string): Exclude<ArchiveResolution, { kind: "outside" | "loop" }> {
    const known = this.#resolved.get(path);
    if (known) return known;
    const raw = this.#raws.get(path) ?? path;
    const node = this.#tree.get(path);
    const target = node?.kind === "link" ? node.target : "";
    let resolved: ArchiveResolution;
    try {
      resolved = this.#tree.resolve(path);
    } catch (error) {
      if (error instanceof ArchiveTreeError) throw new UnsafeArchiveError(`tarball symlink "${raw}" is refused: ${error.message}`);
      throw error;
    }
    if (resolved.kind === "outside")
      throw new UnsafeArchiveError(`tarball symlink "${raw}" resolves outside the checkout (${target}, through ${resolved.via})`);
    if (resolved.kind === "loop") throw new UnsafeArchiveError(`tarball symlink "${raw}" is part of a loop of symbolic links`);
    this.#resolved.set(path, resolved);
    return resolved;
  }

  /** Copies what the link at `path` leads to into `dest`; `copying` holds the directories being copied above it. */
  async #copyLink(path: string, dest: string, copying: readonly string[]): Promise<void> {
    const resolved = this.#resolve(path);
    if (resolved.kind === "missing") return; // A dangling link leads nowhere in the checkout either.
    if (resolved.kind === "file") {
      await this.#copyFile(resolved.real, dest, resolved.size);
      return;
    }
    const real = resolved.real;
    if (copying.some((p) => p === real || p.startsWith(`${real}/`)))
      throw new UnsafeArchiveError(`tarball symlink "${this.#raws.get(path) ?? path}" leads to a directory that contains it, a loop`);
    await this.#copyDirectory(real, dest, [...copying, real]);
  }

  async #copyDirectory(src: string, dest: string, copying: readonly string[]): Promise<void> {
    this.#budget.entry();
    await this.#directories.make(join(this.#root, dest));
    for (const name of this.#tree.children(src)) {
      const from = `${src}/${name}`;
      const to = `${dest}/${name}`;
      const node = this.#tree.get(from);
      if (node?.kind === "directory") await this.#copyDirectory(from, to, copying);
      else if (node?.kind === "file") await this.#copyFile(from, to, node.size);
      else if (node?.kind === "link") await this.#copyLink(from, to, copying);
    }
  }

  async #copyFile(real: string, dest: string, size: number): Promise<void> {
    this.#budget.entry();
    this.#budget.file(size);
    const to = join(this.#root, dest);
    await this.#directories.make(dirname(to));
    // COPYFILE_EXCL: a copy never replaces what is already there.
    await copyFile(join(this.#root, real), to, fsConstants.COPYFILE_EXCL);
  }
}

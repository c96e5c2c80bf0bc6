/** One entry of an archive as it would stand in a checkout. */
export type ArchiveNode = { kind: "directory" } | { kind: "file"; size: number } | { kind: "link"; target: string };

/** Where a path of an archive leads once every symbolic link on the way is followed inside the archive. */
export type ArchiveResolution =
  | { kind: "file"; real: string; size: number }
  | { kind: "directory"; real: string }
  | { kind: "missing" }
  | { kind: "outside"; via: string }
  | { kind: "loop" };

/** Links followed in one path before it counts as a loop: the kernel's own limit. */
const MAX_HOPS_PER_PATH = 40;

/** An archive that breaks a rule of checkouts; names the entry. */
export class ArchiveTreeError extends Error {
  /** The entry's path in the archive, without GitHub's top directory. */
  readonly path: string;

  constructor(path: string, message: string) {
    super(message);
    this.name = "ArchiveTreeError";
    this.path = path;
  }
}

/**
 * The paths of an archive, split on `/` only: on Linux a backslash is part of a name, and names
 * that hold one are refused instead of guessed at (no Kubernetes repository needs them).
 */
export function archivePathParts(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

/**
 * The tree an archive describes, held in memory so that links are followed without touching the
 * disk: every resolution is a few map lookups, and every hop is counted against `maxHops`, so an
 * archive of chained links costs microseconds, not a walk of the file system per hop.
 */
export class ArchiveTree {
  readonly #nodes = new Map<string, ArchiveNode>([["", { kind: "directory" }]]);
  readonly #children = new Map<string, string[]>([["", []]]);
  readonly #maxHops: number;
  #hops = 0;

  constructor(options: { maxHops: number }) {
    this.#maxHops = options.maxHops;
  }

  /**
   * Adds an entry at `path` (relative, `/`-separated, no `..`), with the directories above it.
   * @throws ArchiveTreeError when the path holds a backslash, repeats an entry, or lies under a file or a link
   */
  add(path: string, node: ArchiveNode): void {
    if (path.includes("\\")) throw new ArchiveTreeError(path, `"${path}" has a backslash in its name, which a checkout may not contain`);
    if (node.kind === "link" && node.target.includes("\\"))
      throw new ArchiveTreeError(
        path,
        `symbolic link "${path}" has a backslash in its target (${node.target}), which a checkout may not contain`,
      );
    const parts = archivePathParts(path);
    if (parts.length === 0) return;
    let parent = "";
    for (const part of parts.slice(0, -1)) {
      const here = parent === "" ? part : `${parent}/${part}`;
      const existing = this.#nodes.get(here);
      if (existing === undefined) this.#set(parent, here, part, { kind: "directory" });
      else if (existing.kind !== "directory")
        throw new ArchiveTreeError(path, `"${path}" lies under the ${existing.kind === "link" ? "symbolic link" : "file"} "${here}"`);
      parent = here;
    }
    const name = parts.at(-1) ?? "";
    const full = parts.join("/");
    const existing = this.#nodes.get(full);
    if (existing !== undefined) {
      // A directory named again (explicitly after a file under it implied it) is the same directory.
      if (existing.kind === "directory" && node.kind === "directory") return;
      throw new ArchiveTreeError(path, `"${path}" appears twice in the archive`);
    }
    this.#set(parent, full, name, node);
  }

  #set(parent: string, path: string, name: string, node: ArchiveNode): void {
    this.#nodes.set(path, node);
    this.#children.get(parent)?.push(name);
    if (node.kind === "directory") this.#children.set(path, []);
  }

  /** The entry at a path as added (a link is not followed). */
  get(path: string): ArchiveNode | undefined {
    return this.#nodes.get(archivePathParts(path).join("/"));
  }

  /** The names directly in a directory (a real one: no link on its path), in archive order. */
  children(dir: string): readonly string[] {
    return this.#children.get(dir) ?? [];
  }

  /** Every symbolic link of the archive, by path, in archive order. */
  links(): string[] {
    return [...this.#nodes].filter(([, node]) => node.kind === "link").map(([path]) => path);
  }

  /**
   * Follows `path` one component at a time, as the kernel would in the unpacked tree, and says
   * where it leads. A link's absolute target, or a `..` above the root, is outside.
   * @throws ArchiveTreeError once the archive's links have taken more hops than allowed in total
   */
  resolve(path: string): ArchiveResolution {
    const pending = archivePathParts(path);
    const current: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift() ?? "";
      if (part === "..") {
        if (current.length === 0) return { kind: "outside", via: path };
        current.pop();
        continue;
      }
      const next = [...current, part].join("/");
      const node = this.#nodes.get(next);
      if (node === undefined) return { kind: "missing" };
      if (node.kind === "link") {
        hops += 1;
        this.#hops += 1;
        if (this.#hops > this.#maxHops)
          throw new ArchiveTreeError(path, `the archive's symbolic links take more than ${this.#maxHops} steps to follow`);
        if (hops > MAX_HOPS_PER_PATH) return { kind: "loop" };
        if (node.target.startsWith("/")) return { kind: "outside", via: next };
        pending.unshift(...archivePathParts(node.target));
        continue;
      }
      if (node.kind === "file" && pending.length > 0) return { kind: "missing" };
      current.push(part);
    }
    const real = current.join("/");
    const node = this.#nodes.get(real);
    return node?.kind === "file" ? { kind: "file", real, size: node.size } : { kind: "directory", real };
  }
}

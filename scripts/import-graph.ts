import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";

// The import graph of src/: which file imports which (type-only imports count: a loop of types
// still ties two modules together), its loops, and the imports that run against the floors.

/** Each file of the tree (relative to `root`) and the files it imports. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

/** What each floor of src/ may import besides itself (`views.ts` loads the diff page's files). */
export const FLOORS: Readonly<Record<string, readonly string[]>> = {
  core: [],
  redis: ["core"],
  render: ["core"],
  agent: ["core", "redis"],
  app: ["core", "redis", "render", "views.ts"],
  cli: ["core", "redis", "render", "agent", "app", "views.ts"],
  "views.ts": ["core"],
};

/** A static `import`/`export … from` or a dynamic `import()` of a relative path. */
const SPECIFIER = /(?:(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^;'"]*?\sfrom\s+)?|\bimport\(\s*)["'](\.{1,2}\/[^"']+)["']/g;

/** Reads every `.ts` file under `root` and the relative imports each makes. */
export async function importGraph(root: string): Promise<ImportGraph> {
  const graph = new Map<string, string[]>();
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const file = join(entry.parentPath, entry.name);
    const text = await readFile(file, "utf8");
    const imports = [...text.matchAll(SPECIFIER)].map((match) => relative(root, resolve(dirname(file), match[1] ?? "")));
    graph.set(relative(root, file), [...new Set(imports)]);
  }
  return graph;
}

/** The loops of the graph: each strongly connected set of two or more files, or a file importing itself (Tarjan's algorithm). */
export function importLoops(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const loops: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file) ?? 0);
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file) ?? 0, low.get(next) ?? 0));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file) ?? 0, index.get(next) ?? 0));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const loop: string[] = [];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      onStack.delete(top);
      loop.push(top);
      if (top === file) break;
    }
    if (loop.length > 1 || (graph.get(file) ?? []).includes(file)) loops.push(loop.sort());
  };
  for (const file of [...graph.keys()].sort()) if (!index.has(file)) visit(file);
  return loops;
}

/** Each import from one floor of src/ into a floor it may not import (`FLOORS`), as `from → to`. */
export function floorViolations(graph: ImportGraph): string[] {
  const floorOf = (file: string): string => file.split("/")[0] ?? "";
  const violations: string[] = [];
  for (const [file, imports] of graph) {
    const floor = floorOf(file);
    const allowed = FLOORS[floor];
    if (!allowed) continue;
    for (const target of imports) {
      const to = floorOf(target);
      if (to !== floor && !allowed.includes(to)) violations.push(`${file} → ${target}`);
    }
  }
  return violations.sort();
}

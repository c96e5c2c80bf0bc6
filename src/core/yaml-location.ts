import { isNode, LineCounter, type Document, type ParsedNode } from "yaml";

/** The 1-based line of the deepest node on `path` that exists in the document (the document start when none does). */
export function lineOfPath(doc: Document.Parsed, lineCounter: LineCounter, path: readonly PropertyKey[]): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node: unknown = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as unknown[], true);
    if (isNode(node) && node.range) {
      return lineCounter.linePos((node as ParsedNode).range[0]).line;
    }
    // A map key whose value is null has no node; the pair's key still has a range.
    const parent: unknown = depth === 0 ? undefined : doc.getIn(path.slice(0, depth - 1) as unknown[], true);
    const line = keyLine(parent, path[depth - 1], lineCounter);
    if (line !== undefined) return line;
  }
  return 1;
}

function keyLine(parent: unknown, key: PropertyKey | undefined, lineCounter: LineCounter): number | undefined {
  if (key === undefined || !isNode(parent) || !("items" in parent) || !Array.isArray(parent.items)) return undefined;
  for (const item of parent.items as unknown[]) {
    if (item && typeof item === "object" && "key" in item && isNode(item.key)) {
      const node = item.key as ParsedNode;
      if (String(node.toJSON()) === String(key)) return lineCounter.linePos(node.range[0]).line;
    }
  }
  return undefined;
}

import { isMap, isSeq, LineCounter, parseAllDocuments, type Node } from "yaml";
import type { SourceProblem } from "./errors.ts";
import { yamlErrorMessage } from "./yaml-location.ts";

/** A Kubernetes object as plain data. */
export type KubeObject = Record<string, unknown>;

/** Where an object came from: the file relative to the checkout and the 1-based line of its document. */
export interface SourceLocation {
  file: string;
  line: number;
}

/** An object read from a manifest, with its origin. */
export interface ManifestObject {
  object: KubeObject;
  source: SourceLocation;
}

/** What reading one stream gave: the objects, and the problems of the documents that could not be read. */
export interface ParseResult {
  objects: ManifestObject[];
  problems: SourceProblem[];
}

/** Options for {@link parseManifests}. */
export interface ParseOptions {
  /** Name of the stream in locations (a path relative to the checkout). */
  file: string;
  /** Maps a line of the stream to another origin (used for renderer output). */
  locate?: (line: number) => SourceLocation;
}

/**
 * Reads a YAML or JSON stream the way kubectl does: multi-document, anchors, aliases and merge
 * keys, `List` kinds flattened, empty and comment-only documents skipped. Each object is checked
 * for `apiVersion`, `kind` and `metadata.name`; what fails becomes a problem naming file and line.
 */
export function parseManifests(text: string, options: ParseOptions): ParseResult {
  const lineCounter = new LineCounter();
  const locate = options.locate ?? ((line: number): SourceLocation => ({ file: options.file, line }));
  const objects: ManifestObject[] = [];
  const problems: SourceProblem[] = [];
  const docs = parseAllDocuments(text, { lineCounter, merge: true, prettyErrors: false, uniqueKeys: true });
  // parseAllDocuments returns an EmptyStream (an array) when there is nothing but comments.
  for (const doc of docs) {
    const startLine = lineCounter.linePos(doc.range[0]).line;
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const at = locate(lineCounter.linePos(error.pos[0]).line);
        problems.push({ ...at, message: `invalid YAML: ${yamlErrorMessage(error.message)}` });
      }
      continue;
    }
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (error) {
      problems.push({ ...locate(startLine), message: `invalid YAML: ${yamlErrorMessage(error instanceof Error ? error.message : String(error))}` });
      continue;
    }
    const line = contentLine(doc.contents, lineCounter) ?? startLine;
    collect(value, doc.contents, locate(line), objects, problems, lineCounter, locate);
  }
  return { objects, problems };
}

function contentLine(node: Node | null | undefined, lineCounter: LineCounter): number | undefined {
  return node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
}

function collect(
  value: unknown,
  node: Node | null,
  at: SourceLocation,
  objects: ManifestObject[],
  problems: SourceProblem[],
  lineCounter: LineCounter,
  locate: (line: number) => SourceLocation,
): void {
  if (value === null || value === undefined) return;
  if (typeof value !== "object" || Array.isArray(value)) {
    problems.push({ ...at, message: `document is ${Array.isArray(value) ? "a list" : `a ${typeof value}`}, not a Kubernetes object` });
    return;
  }
  const object = value as KubeObject;
  if (isListKind(object)) {
    const itemsNode = isMap(node) ? node.get("items", true) : undefined;
    const items = object.items as unknown[];
    items.forEach((item, index) => {
      const itemNode = isSeq(itemsNode) ? (itemsNode.items[index] as Node | undefined) : undefined;
      const line = contentLine(itemNode, lineCounter);
      collect(item, itemNode ?? null, line === undefined ? at : locate(line), objects, problems, lineCounter, locate);
    });
    return;
  }
  const missing = missingFields(object);
  if (missing.length > 0) {
    problems.push({ ...at, message: `${describe(object)} is missing ${missing.join(", ")}` });
    return;
  }
  objects.push({ object, source: at });
}

/** Whether an object is a `List` (or `<Kind>List`) whose items kubectl would apply one by one. */
function isListKind(object: KubeObject): boolean {
  return typeof object.kind === "string" && object.kind.endsWith("List") && Array.isArray(object.items);
}

function missingFields(object: KubeObject): string[] {
  const missing: string[] = [];
  if (typeof object.apiVersion !== "string" || object.apiVersion === "") missing.push("apiVersion");
  if (typeof object.kind !== "string" || object.kind === "") missing.push("kind");
  const metadata = object.metadata;
  if (!isRecord(metadata) || typeof metadata.name !== "string" || metadata.name === "") {
    // generateName is for create, not apply: a declarative object needs a name.
    missing.push("metadata.name");
  }
  return missing;
}

function describe(object: KubeObject): string {
  const kind = typeof object.kind === "string" && object.kind ? object.kind : "object";
  const metadata = object.metadata;
  const name = isRecord(metadata) && typeof metadata.name === "string" ? ` "${metadata.name}"` : "";
  return `${kind}${name}`;
}

/** Narrows a value to a plain record. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

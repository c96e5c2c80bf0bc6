import { CORE_SCHEMA, load, mergeTag } from "js-yaml";
import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import type { LineCounter, Node } from "yaml";
import { exactInteger, isRawJson } from "./json.ts";
import { errorMessage, yamlErrorMessage, type SourceProblem } from "./errors.ts";

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
  /**
   * Documents already parsed, by their exact text. Two renders of nearby commits share most
   * documents; parsed values are never changed afterwards, so they can be shared.
   */
  cache?: Map<string, unknown>;
  /**
   * What alias expansion may still produce, shared by every document of one render, so many small
   * alias bombs cannot add up to a large one. Taken from as documents are read.
   */
  budget?: AliasBudget;
}

/** Nodes that alias expansion may still produce in one render. */
export interface AliasBudget {
  remaining: number;
}

/** Nodes alias expansion may produce in one render: far beyond any real use of anchors. */
const ALIAS_BUDGET_NODES = 1_000_000;

/** The alias budget of one render. */
export function aliasBudget(): AliasBudget {
  return { remaining: ALIAS_BUDGET_NODES };
}

// The precise parser is loaded the first time a document needs it: most never do, and loading it
// costs a command line run more than reading a thousand objects.
const requireModule = createRequire(import.meta.url);
let yamlModule: typeof Yaml | undefined;
function yaml(): typeof Yaml {
  return (yamlModule ??= requireModule("yaml") as typeof Yaml);
}

/** YAML 1.2 core schema plus merge keys (`<<`): what most documents mean in YAML 1.1 too. */
const FAST_SCHEMA = CORE_SCHEMA.withTags(mergeTag);

/**
 * Plain scalars that YAML 1.1 (which kubectl and helm read with) resolves unlike YAML 1.2:
 * `yes`/`no`/`on`/`off`/`y`/`n` booleans, `0755` octals, `0b` binaries, `1_000`, `1:20`
 * sexagesimals, `0o` strings, and integers too long for a JavaScript number. A document with any
 * of them is read by the YAML 1.1 parser; the rest read the same either way.
 */
const YAML_11_SCALAR =
  /(?:^|[\s[{,?:-])(?:[yYnN]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|[-+]?0[0-9_]+(?:\.[0-9_]*)?|[-+]?0o[0-7]+|[-+]?0b[01_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|[-+]?[0-9][0-9]*_[0-9_]*(?:\.[0-9_]*)?|[-+]?[0-9]{16,})(?=[ \t]*(?:$|[,\]}#]|:(?:[ \t]|$)))/m;

/** Go's `0o` octal, which go-yaml v2 reads through strconv.ParseInt (YAML 1.1 itself has no `0o`). */
const GO_OCTAL = {
  identify: (value: unknown) => typeof value === "bigint",
  default: true,
  tag: "tag:yaml.org,2002:int",
  format: "OCT",
  test: /^[-+]?0o[0-7_]+$/,
  resolve: (text: string) => {
    const negative = text.startsWith("-");
    const digits = text.replace(/^[-+]?0o/, "").replaceAll("_", "");
    const value = BigInt(`0o${digits}`);
    return negative ? -value : value;
  },
};

/**
 * YAML 1.1 as go-yaml v2 reads it for kubectl and helm: timestamps and base-60 numbers stay
 * strings (go-yaml does not read them), Go's `0o` octals are numbers.
 */
const YAML_11_OPTIONS = {
  version: "1.1",
  intAsBigInt: true,
  customTags: (tags: readonly unknown[]) => [
    GO_OCTAL,
    ...tags.filter((tag) => {
      const { tag: name, format } = tag as { tag?: string; format?: string };
      return name !== "tag:yaml.org,2002:timestamp" && format !== "TIME";
    }),
  ],
} as const;

/**
 * Reads a YAML or JSON stream the way kubectl does: multi-document, anchors, aliases and merge
 * keys, `List` kinds flattened, empty and comment-only documents skipped. Each object is checked
 * for `apiVersion`, `kind` and `metadata.name`; what fails becomes a problem naming file and line.
 *
 * Rendered output runs to tens of thousands of documents, so each document is first read with
 * js-yaml, which is several times faster. Documents it does not take as they are (errors, which
 * need exact lines; aliases that expand too far; `List`s, whose items need their own lines) are
 * read again with the `yaml` library, which keeps every node's position and bounds aliases.
 */
export function parseManifests(text: string, options: ParseOptions): ParseResult {
  const locate = options.locate ?? ((line: number): SourceLocation => ({ file: options.file, line }));
  const objects: ManifestObject[] = [];
  const problems: SourceProblem[] = [];
  const budget = options.budget ?? aliasBudget();
  // Directives (%YAML, %TAG) scope over document boundaries; leave such rare streams to the full parser.
  const chunks = /^%/m.test(text) ? [{ text, line: 1 }] : splitDocuments(text);
  for (const chunk of chunks) {
    const value = cachedLoad(chunk.text, options.cache);
    if (value !== FAILED && !isListValue(value)) {
      if (value === null || value === undefined) continue;
      const at = locate(chunk.line + firstContentLine(chunk.text));
      if (chunk.text.includes("*") && !spend(budget, value)) {
        problems.push({ ...at, message: aliasBudgetMessage() });
        continue;
      }
      collect(value, null, at, objects, problems, undefined, locate);
      continue;
    }
    const shifted = (line: number): SourceLocation => locate(line + chunk.line - 1);
    const precise = parsePrecisely(chunk.text, shifted, budget);
    objects.push(...precise.objects);
    problems.push(...precise.problems);
  }
  return { objects, problems };
}

/** Takes a document's expanded size from the budget; false (and nothing taken) when it does not fit. */
function spend(budget: AliasBudget, value: unknown): boolean {
  const size = expandedSize(value, budget.remaining);
  if (size > budget.remaining) {
    budget.remaining = 0;
    return false;
  }
  budget.remaining -= size;
  return true;
}

function aliasBudgetMessage(): string {
  return `YAML aliases in this render expand to more than the limit of ${ALIAS_BUDGET_NODES.toLocaleString("en-US")} nodes; the document was not read (is it an alias bomb?)`;
}

const FAILED = Symbol("failed");

function cachedLoad(text: string, cache: Map<string, unknown> | undefined): unknown {
  if (!cache) return fastLoad(text);
  if (cache.has(text)) return cache.get(text);
  const value = fastLoad(text);
  if (value !== FAILED) cache.set(text, value);
  return value;
}
/** Past this many nodes once aliases are expanded, a document is handed to the bounded parser. */
const MAX_EXPANDED_NODES = 200_000;

function fastLoad(text: string): unknown {
  if (YAML_11_SCALAR.test(text)) return FAILED;
  let value: unknown;
  try {
    value = load(text, { schema: FAST_SCHEMA });
  } catch {
    return FAILED;
  }
  // Aliases are shared references here; an alias bomb would explode when copied, so measure first.
  return text.includes("*") && expandedSize(value, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES ? FAILED : value;
}

/** Counts nodes as if every alias were expanded, stopping once `limit` is passed. */
function expandedSize(value: unknown, limit: number): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= limit) {
    const node = stack.pop();
    count += 1;
    // One push per item: spreading a 150,000-item list into push() overflows the call stack.
    if (Array.isArray(node)) for (const item of node as unknown[]) stack.push(item);
    else if (isRecord(node)) for (const item of Object.values(node)) stack.push(item);
  }
  return count;
}

function isListValue(value: unknown): boolean {
  return isRecord(value) && isListKind(value);
}

/** Splits a stream at `---` and `...` marker lines; each chunk keeps the 1-based line it starts on. */
export function splitDocuments(text: string): { text: string; line: number }[] {
  const chunks: { text: string; line: number }[] = [];
  const marker = /^(?:---|\.\.\.)(?=[ \t\r\n]|$)/gm;
  let start = 0;
  let startLine = 1;
  let line = 1;
  let cursor = 0;
  for (let match = marker.exec(text); match !== null; match = marker.exec(text)) {
    line += countNewlines(text, cursor, match.index);
    cursor = match.index;
    if (match.index > start || chunks.length > 0) chunks.push({ text: text.slice(start, match.index), line: startLine });
    // What follows `---` on its own line (`--- {a: 1}`) belongs to the next document.
    start = match[0] === "---" ? match.index + 3 : text.indexOf("\n", match.index) + 1 || text.length;
    startLine = match[0] === "---" ? line : line + 1;
  }
  chunks.push({ text: text.slice(start), line: startLine });
  return chunks.filter((chunk) => chunk.text.trim() !== "");
}

function countNewlines(text: string, from: number, to: number): number {
  let count = 0;
  for (let i = text.indexOf("\n", from); i !== -1 && i < to; i = text.indexOf("\n", i + 1)) count += 1;
  return count;
}

/** The 0-based offset of the first line that is neither blank nor a comment. */
function firstContentLine(text: string): number {
  // Scans characters instead of splitting: this runs once per document of every render.
  let line = 0;
  let atLineStart = true;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line += 1;
      atLineStart = true;
    } else if (c === 32 || c === 9 || c === 13) {
      continue;
    } else if (atLineStart && c === 35) {
      // A comment line: skip to its end.
      const end = text.indexOf("\n", i);
      if (end < 0) return 0;
      i = end - 1;
      atLineStart = false;
    } else {
      return line;
    }
  }
  return 0;
}

/** Parses with positions: exact lines for errors and list items, bounded alias expansion. */
function parsePrecisely(text: string, locate: (line: number) => SourceLocation, budget: AliasBudget): ParseResult {
  const { LineCounter: Counter, parseAllDocuments } = yaml();
  const lineCounter = new Counter();
  const objects: ManifestObject[] = [];
  const problems: SourceProblem[] = [];
  const docs = parseAllDocuments(text, {
    lineCounter,
    merge: true,
    prettyErrors: false,
    uniqueKeys: true,
    ...YAML_11_OPTIONS,
  } as Parameters<typeof parseAllDocuments>[1]);
  // parseAllDocuments returns an EmptyStream (an array) when there is nothing but comments.
  for (const doc of docs) {
    const startLine = lineCounter.linePos(doc.range[0]).line;
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const at = locate(lineCounter.linePos(error.pos[0]).line);
        problems.push({ ...at, message: `invalid YAML: ${yamlErrorMessage(error.message)}`, reason: "invalid-yaml" });
      }
      continue;
    }
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      value = exactIntegers(doc.toJS({ maxAliasCount: 1000 }));
    } catch (error) {
      problems.push({ ...locate(startLine), message: `invalid YAML: ${yamlErrorMessage(errorMessage(error))}`, reason: "invalid-yaml" });
      continue;
    }
    const line = contentLine(doc.contents, lineCounter) ?? startLine;
    if (text.includes("*") && !spend(budget, value)) {
      problems.push({ ...locate(line), message: aliasBudgetMessage() });
      continue;
    }
    collect(value, doc.contents, locate(line), objects, problems, lineCounter, locate);
  }
  return { objects, problems };
}

/** Replaces every BigInt (the 1.1 parser reads all integers as BigInt) with an exact number. */
function exactIntegers(value: unknown): unknown {
  if (typeof value === "bigint") return exactInteger(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = exactIntegers(value[i]);
    return value;
  }
  if (isRecord(value)) {
    for (const key of Object.keys(value)) setOwn(value, key, exactIntegers(value[key]));
  }
  return value;
}

function contentLine(node: Node | null | undefined, lineCounter: LineCounter | undefined): number | undefined {
  return node?.range && lineCounter ? lineCounter.linePos(node.range[0]).line : undefined;
}

function collect(
  value: unknown,
  node: Node | null,
  at: SourceLocation,
  objects: ManifestObject[],
  problems: SourceProblem[],
  lineCounter: LineCounter | undefined,
  locate: (line: number) => SourceLocation,
): void {
  if (value === null || value === undefined) return;
  if (typeof value !== "object" || Array.isArray(value)) {
    problems.push({
      ...at,
      message: `document is ${Array.isArray(value) ? "a list" : `a ${typeof value}`}, not a Kubernetes object`,
      reason: "not-an-object",
    });
    return;
  }
  const object = value as KubeObject;
  if (isListKind(object)) {
    const itemsNode = node && yaml().isMap(node) ? node.get("items", true) : undefined;
    const items = object.items as unknown[];
    items.forEach((item, index) => {
      const itemNode = itemsNode && yaml().isSeq(itemsNode) ? (itemsNode.items[index] as Node | undefined) : undefined;
      const line = contentLine(itemNode, lineCounter);
      collect(item, itemNode ?? null, line === undefined ? at : locate(line), objects, problems, lineCounter, locate);
    });
    return;
  }
  const missing = missingFields(object);
  const metadata = metadataOf(object);
  if (missing.length === 1 && missing[0] === "metadata.name" && typeof metadata.generateName === "string") {
    problems.push({
      ...at,
      message: `${describeIncomplete(object)} has metadata.generateName "${metadata.generateName}" and no metadata.name: Sluice applies objects declaratively (server-side apply), which needs a fixed name. Set metadata.name; for a Job that must run on every deploy, put a version or a hash of its spec in the name`,
    });
    return;
  }
  if (missing.length > 0) {
    const notAnObject = missing.includes("apiVersion") || missing.includes("kind");
    problems.push({
      ...at,
      message: `${describeIncomplete(object)} is missing ${missing.join(", ")}`,
      ...(notAnObject ? { reason: "not-an-object" as const } : {}),
    });
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

/** Names an object that may lack its kind or name: `Job "migrate"`, `object "x"`. */
function describeIncomplete(object: KubeObject): string {
  const kind = typeof object.kind === "string" && object.kind ? object.kind : "object";
  const metadata = object.metadata;
  const name = isRecord(metadata) && typeof metadata.name === "string" ? ` "${metadata.name}"` : "";
  return `${kind}${name}`;
}

/**
 * Sets an own property, whatever its name: plain assignment of `__proto__` changes the object's
 * prototype instead, and the key would vanish from diffs, digests and masks.
 */
export function setOwn(record: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Narrows a value to a plain record (not a list, and not an exact big integer). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isRawJson(value);
}

/** The value when it is a mapping, otherwise an empty one: for reading optional nested fields. */
export function recordOf(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

/** An object's `metadata`, or an empty mapping when it has none. */
export function metadataOf(object: KubeObject | undefined): Record<string, unknown> {
  return recordOf(object?.metadata);
}

import { CORE_SCHEMA, load, mergeTag } from "js-yaml";
import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import type { LineCounter, Node } from "yaml";
import { readBlockYaml, UNSUPPORTED, YAML_11, YAML_11_PLAIN_SOURCE } from "./block-yaml.ts";
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
 * A plain scalar anywhere in a document (in block or flow context) that YAML 1.1 reads unlike
 * YAML 1.2 ({@link YAML_11_PLAIN_SOURCE}): a document with one is read by the YAML 1.1 parser; the rest
 * read the same either way.
 */
const YAML_11_SCALAR = new RegExp(`(?:^|[\\s[{,?:-])(?:${YAML_11_PLAIN_SOURCE})(?=[ \\t]*(?:$|[,\\]}#]|:(?:[ \\t]|$)))`, "m");

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
 * Rendered output runs to tens of thousands of documents, so each document is first read by
 * `readBlockYaml` (the shapes renderers and people write manifests in) or else js-yaml, both
 * several times faster than a parser that keeps positions. Documents they do not take as they are (errors, which
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
  const known = cache.get(text);
  // Only an empty document is cached as undefined, and reading it again costs nothing.
  if (known !== undefined) return known;
  const value = fastLoad(text);
  if (value !== FAILED) cache.set(text, value);
  return value;
}
/** Past this many nodes once aliases are expanded, a document is handed to the bounded parser. */
const MAX_EXPANDED_NODES = 200_000;

function fastLoad(text: string): unknown {
  // Most documents are block YAML with some flow collections, block scalars and anchors, which a
  // reader of those shapes alone takes several times faster.
  const block = readBlockYaml(text, FAST_SCHEMA);
  if (block === YAML_11) return FAILED;
  let value: unknown = block;
  if (block === UNSUPPORTED) {
    if (YAML_11_SCALAR.test(text)) return FAILED;
    try {
      value = load(text, { schema: FAST_SCHEMA });
    } catch {
      return FAILED;
    }
  }
  // Aliases are shared references (from either reader); an alias bomb would explode when copied, so measure first.
  return text.includes("*") && expandedSize(value, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES ? FAILED : value;
}

/** Characters of a string that count as one more node: aliases of a long string add up by their length too. */
const CHARACTERS_PER_NODE = 1_024;

/**
 * Counts nodes as if every alias were expanded, stopping once `limit` is passed. A string counts
 * one node per 1,024 characters besides its own: 61 KB of YAML that names a 60,000-character
 * string 10,000 times is ten thousand nodes but 600 MB once written out.
 */
function expandedSize(value: unknown, limit: number): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= limit) {
    const node = stack.pop();
    count += typeof node === "string" ? 1 + Math.floor(node.length / CHARACTERS_PER_NODE) : 1;
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
    // An unknown `!!` tag (`!!python/object`) is a warning to the parser and an error to kubectl.
    const unknownTags = doc.warnings.filter((w) => w.code === "TAG_RESOLVE_FAILED" && w.message.includes("tag:yaml.org,2002:"));
    if (doc.errors.length > 0 || unknownTags.length > 0) {
      const seen = new Set<string>();
      for (const error of [...doc.errors, ...unknownTags]) {
        const at = locate(lineCounter.linePos(error.pos[0]).line);
        const message = `invalid YAML: ${yamlErrorMessage(error.message)}`;
        // One report per line and message: a parser that runs out of stack says so at every level.
        if (seen.has(`${at.file}:${at.line}:${message}`)) continue;
        seen.add(`${at.file}:${at.line}:${message}`);
        problems.push({ ...at, message, reason: "invalid-yaml" });
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
  if (object.kind === "List" && object.items !== undefined && !Array.isArray(object.items)) {
    problems.push({ ...at, message: `List: items must be a list of objects, not ${typeOf(object.items)}` });
    return;
  }
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
  // A document both sides share is one parsed value (see ParseOptions.cache): checked once.
  if (checked.has(object)) {
    objects.push({ object, source: at });
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
  const wrong = typeProblem(object);
  if (wrong !== undefined) {
    problems.push({ ...at, message: `${describeIncomplete(object)}: ${wrong}` });
    return;
  }
  checked.add(object);
  objects.push({ object, source: at });
}

/** Objects that passed {@link collect}'s checks; parsed values never change, so the answer holds. */
const checked = new WeakSet<object>();

/** Whether an object is a `List` (or `<Kind>List`) whose items kubectl would apply one by one. */
function isListKind(object: KubeObject): boolean {
  return typeof object.kind === "string" && object.kind.endsWith("List") && Array.isArray(object.items);
}

function missingFields(object: KubeObject): string[] {
  const missing: string[] = [];
  const absent = (value: unknown) => value === undefined || value === null || value === "";
  if (absent(object.apiVersion)) missing.push("apiVersion");
  if (absent(object.kind)) missing.push("kind");
  const metadata = object.metadata;
  // generateName is for create, not apply: a declarative object needs a name.
  if (absent(metadata) || (isRecord(metadata) && absent(metadata.name))) missing.push("metadata.name");
  return missing;
}

/** `a number (123)`, `a list`: what a value is, for messages about wrong types. */
function typeOf(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (isRecord(value)) return "a mapping";
  if (typeof value === "string") return "a string";
  return `a ${typeof value} (${String(value)})`;
}

const API_VERSION = /^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * What the API server (or kubectl, decoding into its types) would refuse about an object's
 * identity fields, its metadata's types and a Secret's data; undefined when nothing. Never quotes a
 * Secret value.
 */
function typeProblem(object: KubeObject): string | undefined {
  if (typeof object.apiVersion !== "string") return `apiVersion must be a string, not ${typeOf(object.apiVersion)}`;
  if (!API_VERSION.test(object.apiVersion))
    return `apiVersion "${object.apiVersion}" is not <group>/<version> or <version> (such as apps/v1 or v1)`;
  if (typeof object.kind !== "string") return `kind must be a string, not ${typeOf(object.kind)}`;
  const metadata = object.metadata;
  if (!isRecord(metadata)) return `metadata must be a mapping, not ${typeOf(metadata)}`;
  for (const field of ["name", "namespace", "generateName"])
    if (metadata[field] !== undefined && metadata[field] !== null && typeof metadata[field] !== "string")
      return `metadata.${field} must be a string, not ${typeOf(metadata[field])}`;
  for (const field of ["labels", "annotations"]) {
    const map = metadata[field];
    if (map === undefined || map === null) continue;
    if (!isRecord(map)) return `metadata.${field} must be a mapping of strings, not ${typeOf(map)}`;
    for (const [key, value] of Object.entries(map))
      if (typeof value !== "string") return `metadata.${field}["${key}"] must be a string, not ${typeOf(value)} (quote it)`;
  }
  if (object.apiVersion === "v1" && object.kind === "Secret") return secretProblem(object);
  return undefined;
}

function secretProblem(secret: KubeObject): string | undefined {
  for (const field of ["data", "stringData"]) {
    const map = secret[field];
    if (map === undefined || map === null) continue;
    if (!isRecord(map))
      return `Secret ${field} must be a mapping of keys to ${field === "data" ? "base64 " : ""}values, not ${typeOf(map)}`;
    for (const [key, value] of Object.entries(map)) {
      if (typeof value !== "string")
        return `Secret ${field} key "${key}" must be a string, not ${Array.isArray(value) ? "a list" : isRecord(value) ? "a mapping" : `a ${typeof value}`} (the value is not shown)`;
      if (field === "data" && !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value.replace(/\s+/g, "")))
        return `Secret data key "${key}" is not valid base64 (the value is not shown); put plain text under stringData instead`;
    }
  }
  return undefined;
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
  // `__proto__` is the one accessor plain objects inherit; every other key assigns as an own property.
  if (key === "__proto__") Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
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

/** C0 and C1 control characters YAML does not allow (tab, line feed, carriage return and NEL are allowed). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u0084\u0086-\u009F]/;

/**
 * A manifest file's text as kubectl reads it: UTF-8, a UTF-8 byte order mark dropped. UTF-16 and
 * UTF-32, binary data, bytes that are not UTF-8 and control characters are refused with the line
 * they are on, instead of being read as something else (a replacement character changes a value
 * silently; a UTF-16 file reads as one long string).
 */
export function decodeManifest(bytes: Uint8Array): { text: string } | { problem: string; line?: number } {
  const [a, b, c, d] = bytes;
  if (a === 0xff && b === 0xfe && c === 0 && d === 0) return { problem: "is UTF-32 text; manifests are read as UTF-8: save it as UTF-8" };
  if ((a === 0xff && b === 0xfe) || (a === 0xfe && b === 0xff))
    return { problem: "is UTF-16 text; manifests are read as UTF-8 (as kubectl reads them): save it as UTF-8" };
  const body = a === 0xef && b === 0xbb && c === 0xbf ? bytes.subarray(3) : bytes;
  const lineAt = (text: string, index: number): number => text.slice(0, index).split("\n").length;
  const nul = body.indexOf(0);
  if (nul >= 0)
    return { problem: "is binary data, not text (it has NUL bytes)", line: body.subarray(0, nul).filter((b) => b === 0x0a).length + 1 };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    const lenient = new TextDecoder("utf-8", { ignoreBOM: true }).decode(body);
    return { problem: "is not valid UTF-8 text (save it as UTF-8)", line: lineAt(lenient, lenient.indexOf("\uFFFD")) };
  }
  const control = CONTROL.exec(text);
  if (control)
    return {
      problem: `has the control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}, which YAML does not allow (write it as an escape in a double-quoted string)`,
      line: lineAt(text, control.index),
    };
  return { text };
}

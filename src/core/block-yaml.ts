import type { Schema } from "js-yaml";

/** What {@link readBlockYaml} returns for a document outside the shape it reads. */
export const UNSUPPORTED: unique symbol = Symbol("unsupported");
/** What {@link readBlockYaml} returns for a document with a plain scalar that YAML 1.1 reads unlike YAML 1.2. */
export const YAML_11: unique symbol = Symbol("yaml-1.1");

/** The part of a js-yaml schema that resolves plain scalars (`null`, `true`, `42`, `1.5`, strings): what it reads and as which tag. */
export interface PlainResolver {
  tags: readonly { implicit?: boolean; nodeKind?: string; implicitFirstChars?: readonly string[] | null }[];
  resolveImplicitScalarTag(source: string): { value: unknown; tag: { tagName: string } };
}

/** The schema's own plain-scalar resolution (not in js-yaml's typings), checked to be there. */
export function plainResolverOf(schema: Schema): PlainResolver {
  const resolver = schema as unknown as PlainResolver;
  const tags: unknown = resolver.tags;
  if (typeof resolver.resolveImplicitScalarTag !== "function" || !Array.isArray(tags))
    throw new Error("js-yaml's Schema no longer resolves plain scalars itself");
  return resolver;
}

/** YAML's indicator characters: a plain scalar may not start with one (`-`, `?` and `:` may, before a non-space). */
export const INDICATORS = new Set(Array.from("-?:,[]{}#&*!|>'\"%@`", (c) => c.charCodeAt(0)));

/**
 * Plain scalars that YAML 1.1 (which kubectl and helm read with) resolves unlike YAML 1.2:
 * `yes`/`no`/`on`/`off`/`y`/`n` booleans, `0755` octals, `0b` binaries, `1_000`, `1:20`
 * sexagesimals, Go's `0o` octals, and integers too long for a JavaScript number.
 */
export const YAML_11_PLAIN_SOURCE =
  "[yYnN]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|[-+]?0[0-9_]+(?:\\.[0-9_]*)?|[-+]?0o[0-7]+|[-+]?0b[01_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\\.[0-9_]*)?|[-+]?[0-9][0-9]*_[0-9_]*(?:\\.[0-9_]*)?|[-+]?[0-9]{16,}";
/** One whole plain scalar that {@link YAML_11_PLAIN_SOURCE} describes. */
const YAML_11_PLAIN = new RegExp(`^(?:${YAML_11_PLAIN_SOURCE})$`);
/** First characters of the scalars {@link YAML_11_PLAIN_SOURCE} describes. */
const YAML_11_FIRST = new Set(Array.from("yYnNoO0123456789+-"));

/** Thrown inside the reader when a plain scalar needs YAML 1.1. */
class NeedsYaml11 extends Error {}
const needsYaml11 = new NeedsYaml11();

/**
 * Tabs, carriage returns and byte order marks (which YAML reads in ways of their own), and the
 * characters YAML does not allow at all (control characters, lone surrogates), which js-yaml
 * reports as errors.
 */
const LEFT_TO_JS_YAML =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\t\r\uFEFF\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF]/;

/** Thrown inside the reader to give up on a document; never escapes {@link readBlockYaml}. */
class Unsupported extends Error {}
const unsupported = new Unsupported();

const SPACE = 32;
const DASH = 45;
const HASH = 35;
const COLON = 58;
const DOUBLE_QUOTE = 34;
const SINGLE_QUOTE = 39;
const BACKSLASH = 92;

/**
 * Reads one YAML document in the shape renderers and people write manifests in, several times
 * faster than a general parser: block mappings and sequences, one-line plain and quoted scalars,
 * literal block scalars, `[]` and `{}`, comments. The value is exactly what js-yaml gives with the
 * core schema (scalars are resolved by js-yaml's own core tags). Anything else (flow collections,
 * anchors, aliases, tags, merge keys, multi-line scalars, folded scalars, tabs, duplicate keys,
 * and every error) returns {@link UNSUPPORTED}, and the caller reads the document with js-yaml.
 */
export function readBlockYaml(text: string, schema: Schema): unknown {
  if (LEFT_TO_JS_YAML.test(text)) return UNSUPPORTED;
  try {
    return new BlockReader(text, plainResolver(schema)).document();
  } catch (error) {
    if (error === unsupported) return UNSUPPORTED;
    if (error === needsYaml11) return YAML_11;
    // Nesting deeper than the stack: the other parsers say what is wrong with such a document.
    if (error instanceof RangeError) return UNSUPPORTED;
    throw error;
  }
}

const resolvers = new WeakMap<Schema, (plain: string) => unknown>();

/**
 * Resolves plain scalars as the schema does. A scalar whose first character no implicit tag
 * claims (most keys and names) is a string without asking; one YAML 1.1 reads otherwise stops
 * the reader.
 */
function plainResolver(schema: Schema): (plain: string) => unknown {
  const known = resolvers.get(schema);
  if (known) return known;
  const resolver = plainResolverOf(schema);
  const implicit = resolver.tags.filter((tag) => tag.implicit && tag.nodeKind === "scalar");
  const anyFirst = implicit.some((tag) => !tag.implicitFirstChars);
  const firstChars = new Set(implicit.flatMap((tag) => tag.implicitFirstChars ?? []));
  const resolve = (plain: string): unknown => {
    const first = plain.length === 0 ? "" : (plain[0] as string);
    if (YAML_11_FIRST.has(first) && YAML_11_PLAIN.test(plain)) throw needsYaml11;
    if (!anyFirst && !firstChars.has(first)) return plain;
    return resolver.resolveImplicitScalarTag(plain).value;
  };
  resolvers.set(schema, resolve);
  return resolve;
}

class BlockReader {
  readonly #lines: string[];
  readonly #resolve: (plain: string) => unknown;
  #next = 0;
  /** The indentation of the line {@link #content} last found. */
  #at = 0;

  constructor(text: string, resolve: (plain: string) => unknown) {
    this.#lines = text.split("\n");
    this.#resolve = resolve;
  }

  document(): unknown {
    const first = this.#content();
    if (first < 0) throw unsupported;
    const value = this.#block(this.#at);
    if (this.#content() >= 0) throw unsupported;
    return value;
  }

  /** The index of the next line that is neither blank nor a comment (the cursor moves to it), or -1. */
  #content(): number {
    const lines = this.#lines;
    while (this.#next < lines.length) {
      const line = lines[this.#next] as string;
      const indent = indentOf(line);
      if (indent < line.length && line.charCodeAt(indent) !== HASH) {
        this.#at = indent;
        return this.#next;
      }
      this.#next += 1;
    }
    return -1;
  }

  /** A mapping or sequence whose entries start at column `indent`. */
  #block(indent: number): unknown {
    const line = this.#lines[this.#next] as string;
    return isSequenceEntry(line, indent) ? this.#sequence(indent) : this.#mapping(indent);
  }

  #mapping(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let i = this.#content(); i >= 0; i = this.#content()) {
      const line = this.#lines[i] as string;
      const at = this.#at;
      if (at < indent) break;
      if (at > indent) throw unsupported;
      // A sequence at a mapping's own indentation belongs to the key before it; here it is a mistake.
      if (isSequenceEntry(line, indent)) throw unsupported;
      const entry = this.#key(line, indent);
      if (entry === undefined) throw unsupported;
      // Values are never undefined: anything found is a duplicate or inherited (`constructor`, `__proto__`).
      if (out[entry.key] !== undefined) throw unsupported;
      this.#next = i + 1;
      out[entry.key] = this.#value(line, entry.valueAt, indent, true);
    }
    return out;
  }

  #sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    for (let i = this.#content(); i >= 0; i = this.#content()) {
      const line = this.#lines[i] as string;
      const at = this.#at;
      if (at < indent) break;
      if (at > indent) throw unsupported;
      if (!isSequenceEntry(line, indent)) break;
      let start = indent + 1;
      while (start < line.length && line.charCodeAt(start) === SPACE) start += 1;
      if (start < line.length && line.charCodeAt(start) === DASH && isSequenceEntry(line, start)) throw unsupported;
      if (start < line.length && line.charCodeAt(start) !== HASH && this.#key(line, start) !== undefined) {
        // `- key: value`: a mapping whose keys line up with this first one.
        this.#lines[i] = " ".repeat(start) + line.slice(start);
        this.#next = i;
        out.push(this.#mapping(start));
        continue;
      }
      this.#next = i + 1;
      out.push(this.#value(line, start, indent, false));
    }
    return out;
  }

  /**
   * The value that starts at `from` on `line` (or below it), belonging to an entry at `indent`.
   * Under a mapping key, a nested sequence may sit at the key's own indentation.
   */
  #value(line: string, from: number, indent: number, underKey: boolean): unknown {
    let start = from;
    while (start < line.length && line.charCodeAt(start) === SPACE) start += 1;
    if (start >= line.length || line.charCodeAt(start) === HASH) {
      const i = this.#content();
      if (i < 0) return null;
      const next = this.#lines[i] as string;
      const at = this.#at;
      if (at > indent) return this.#block(at);
      if (underKey && at === indent && isSequenceEntry(next, indent)) return this.#sequence(indent);
      return null;
    }
    const c = line.charCodeAt(start);
    let value: unknown;
    if (c === 124 /* | */) return this.#literal(line, start, indent);
    if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      const quoted = readQuoted(line, start);
      if (quoted === undefined || !onlyComment(line, quoted.end)) throw unsupported;
      value = quoted.value;
    } else if (line.startsWith("[]", start) || line.startsWith("{}", start)) {
      if (!onlyComment(line, start + 2)) throw unsupported;
      value = c === 91 ? [] : {};
    } else {
      value = this.#resolve(readPlain(line, start));
    }
    // A more indented line after a one-line value continues it (or is an error): leave it to js-yaml.
    const i = this.#content();
    if (i >= 0 && this.#at > indent) throw unsupported;
    return value;
  }

  /** A literal block scalar (`|` or `|-`) whose header is at `start`. */
  #literal(line: string, start: number, indent: number): string {
    let end = start + 1;
    const chomp = line.charCodeAt(end);
    if (chomp === DASH) end += 1;
    else if (chomp === 43 /* + */ || (chomp >= 48 && chomp <= 57)) throw unsupported;
    if (!onlyComment(line, end)) throw unsupported;
    const lines = this.#lines;
    const parts: string[] = [];
    let contentIndent = -1;
    let widestEmpty = 0;
    let i = this.#next;
    // The first line with text sets the indentation; blank lines before it may not be wider.
    for (; i < lines.length; i += 1) {
      const text = lines[i] as string;
      const at = indentOf(text);
      if (at < text.length) {
        contentIndent = at;
        break;
      }
      widestEmpty = Math.max(widestEmpty, text.length);
      parts.push("");
    }
    if (contentIndent <= indent || widestEmpty > contentIndent) throw unsupported;
    let lastText = -1;
    for (; i < lines.length; i += 1) {
      const text = lines[i] as string;
      const at = indentOf(text);
      if (at >= text.length) {
        // A line of spaces wider than the block's indentation is content: leave it to js-yaml.
        if (text.length > contentIndent) throw unsupported;
        parts.push("");
        continue;
      }
      if (at < contentIndent) break;
      parts.push(text.slice(contentIndent));
      lastText = parts.length;
    }
    this.#next = i;
    const body = parts.slice(0, lastText).join("\n");
    return chomp === DASH ? body : `${body}\n`;
  }

  /**
   * The key of a mapping entry that starts at column `at`, and where its value starts; undefined
   * when the line is not a `key: value` entry this reader takes.
   */
  #key(line: string, at: number): { key: string; valueAt: number } | undefined {
    const entry = splitKey(line, at);
    // Only keys that stay strings: `80:` or `true:` would be converted, `<<:` merges.
    return entry && (entry.quoted || (entry.key !== "<<" && this.#resolve(entry.key) === entry.key)) ? entry : undefined;
  }
}

function indentOf(line: string): number {
  let i = 0;
  while (i < line.length && line.charCodeAt(i) === SPACE) i += 1;
  return i;
}

/** Whether `line` has a sequence entry (`-` then a space or the end) at column `at`. */
function isSequenceEntry(line: string, at: number): boolean {
  return line.charCodeAt(at) === DASH && (at + 1 === line.length || line.charCodeAt(at + 1) === SPACE);
}

/** Whether the rest of `line` from `at` is spaces and, after at least one space, a comment. */
function onlyComment(line: string, at: number): boolean {
  let i = at;
  while (i < line.length && line.charCodeAt(i) === SPACE) i += 1;
  return i === line.length || (i > at && line.charCodeAt(i) === HASH);
}

/** Where a `key: value` entry's key and value are, when the line at column `at` is one. */
function splitKey(line: string, at: number): { key: string; valueAt: number; quoted: boolean } | undefined {
  const c = line.charCodeAt(at);
  if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
    const quoted = readQuoted(line, at);
    if (quoted === undefined || line.charCodeAt(quoted.end) !== COLON) return undefined;
    const after = quoted.end + 1;
    if (after < line.length && line.charCodeAt(after) !== SPACE) return undefined;
    return { key: quoted.value, valueAt: after, quoted: true };
  }
  if (INDICATORS.has(c)) return undefined;
  for (let i = at; i < line.length; i += 1) {
    const d = line.charCodeAt(i);
    if (d === HASH && line.charCodeAt(i - 1) === SPACE) return undefined;
    if (d === COLON && (i + 1 === line.length || line.charCodeAt(i + 1) === SPACE)) {
      if (line.charCodeAt(i - 1) === SPACE) return undefined;
      return { key: line.slice(at, i), valueAt: i + 1, quoted: false };
    }
  }
  return undefined;
}

/** A one-line plain scalar starting at `start`, its comment dropped. */
function readPlain(line: string, start: number): string {
  if (INDICATORS.has(line.charCodeAt(start))) {
    // `-1` and `-foo` are plain; a lone or spaced dash is not (and the rest are left to js-yaml).
    const c = line.charCodeAt(start);
    const next = line.charCodeAt(start + 1);
    if (c !== DASH || Number.isNaN(next) || next === SPACE) throw unsupported;
  }
  let end = line.length;
  for (let i = start; i < line.length; i += 1) {
    const c = line.charCodeAt(i);
    if (c === HASH && line.charCodeAt(i - 1) === SPACE) {
      end = i;
      break;
    }
    // `a: b: c` is an error, not a string.
    if (c === COLON && (i + 1 === line.length || line.charCodeAt(i + 1) === SPACE)) throw unsupported;
  }
  while (end > start && line.charCodeAt(end - 1) === SPACE) end -= 1;
  return line.slice(start, end);
}

const ESCAPES: Record<string, string> = {
  "\\": "\\",
  '"': '"',
  "/": "/",
  n: "\n",
  t: "\t",
  r: "\r",
  b: "\b",
  f: "\f",
  "0": "\0",
  " ": " ",
};

/** A quoted scalar that opens at `start` and closes on the same line; undefined when it does not. */
function readQuoted(line: string, start: number): { value: string; end: number } | undefined {
  const quote = line.charCodeAt(start);
  let value = "";
  let from = start + 1;
  for (let i = start + 1; i < line.length; i += 1) {
    const c = line.charCodeAt(i);
    if (quote === SINGLE_QUOTE) {
      if (c !== SINGLE_QUOTE) continue;
      if (line.charCodeAt(i + 1) === SINGLE_QUOTE) {
        value += line.slice(from, i + 1);
        i += 1;
        from = i + 1;
        continue;
      }
      return { value: value + line.slice(from, i), end: i + 1 };
    }
    if (c === DOUBLE_QUOTE) return { value: value + line.slice(from, i), end: i + 1 };
    if (c !== BACKSLASH) continue;
    value += line.slice(from, i);
    const code = line[i + 1];
    if (code === undefined) throw unsupported;
    const simple = ESCAPES[code];
    if (simple !== undefined) {
      value += simple;
      i += 1;
    } else if (code === "x" || code === "u") {
      const digits = line.slice(i + 2, i + (code === "x" ? 4 : 6));
      if (!/^[0-9a-fA-F]+$/.test(digits) || digits.length !== (code === "x" ? 2 : 4)) throw unsupported;
      const point = Number.parseInt(digits, 16);
      // Half of a surrogate pair is left to js-yaml, which has its own way with it.
      if (point >= 0xd800 && point <= 0xdfff) throw unsupported;
      value += String.fromCharCode(point);
      i += 1 + digits.length;
    } else {
      throw unsupported;
    }
    from = i + 1;
  }
  return undefined;
}

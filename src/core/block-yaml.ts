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
 * sexagesimals, Go's `0o` octals, signed hexadecimals (`-0x1F`) and ones with `_`, and integers
 * too long for a JavaScript number.
 */
export const YAML_11_PLAIN_SOURCE =
  "[yYnN]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|[-+]?0[0-9_]+(?:\\.[0-9_]*)?|[-+]?0o[0-7_]+|[-+]0x[0-9a-fA-F_]+|[-+]?0x[0-9a-fA-F]*_[0-9a-fA-F_]*|[-+]?0b[01_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\\.[0-9_]*)?|[-+]?[0-9][0-9]*_[0-9_]*(?:\\.[0-9_]*)?|[-+]?[0-9]{16,}";
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
const COMMA = 44;
const DOUBLE_QUOTE = 34;
const SINGLE_QUOTE = 39;
const BACKSLASH = 92;
const AMPERSAND = 38;
const ASTERISK = 42;
const BRACKET_OPEN = 91;
const BRACKET_CLOSE = 93;
const BRACE_OPEN = 123;
const BRACE_CLOSE = 125;

/**
 * Collections nested deeper than this are left to js-yaml, which refuses nodes nested 100 deep
 * (`maxDepth`); the margin keeps the leaves inside its limit too.
 */
const MAX_DEPTH = 90;
/** js-yaml refuses a merge of more than 100 mappings and more than 10,000 merged keys in a document; stay below. */
const MAX_MERGE_SOURCES = 100;
const MAX_MERGE_WORK = 9_000;

/**
 * One definition of an anchor. As in js-yaml, a name belongs to the latest definition started (a
 * collection's anchor is defined where it opens), and an alias to one still being read (a
 * recursive structure) is left to js-yaml.
 */
interface Anchor {
  value: unknown;
  done: boolean;
}

/** How a block scalar treats its final line breaks (`|` clips to one, `|-` strips them, `|+` keeps them). */
type Chomping = "clip" | "strip" | "keep";

function isFlowIndicator(c: number): boolean {
  return c === COMMA || c === BRACKET_OPEN || c === BRACKET_CLOSE || c === BRACE_OPEN || c === BRACE_CLOSE;
}

/** Characters of anchor and alias names the reader takes (js-yaml takes more; the rest is left to it). */
function isNameChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === DASH || c === 95 /* _ */ || c === 46; /* . */
}

/**
 * Reads one YAML document in the shapes renderers and people write manifests in, several times
 * faster than a general parser: block mappings and sequences; flow sequences and mappings, on one
 * line or several; one-line plain and quoted scalars; literal and folded block scalars with any
 * chomping and indentation indicator; anchors, aliases and merge keys (`<<`); comments. The value
 * is exactly what js-yaml gives with the core schema and merge keys (scalars are resolved by
 * js-yaml's own core tags; aliases share the anchored value, as js-yaml's do). Anything else (tags,
 * multi-line plain and quoted scalars, complex keys, recursive aliases, tabs, duplicate keys, and
 * every error) returns {@link UNSUPPORTED}, and the caller reads the document with js-yaml.
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
 * Plain scalars this short are remembered once resolved (up to a number of them): keys and small
 * values (`name`, `targetPort`, `true`, `80`) repeat across thousands of documents, and resolving
 * them runs js-yaml's patterns. Resolved values are primitives, so sharing them is safe.
 */
const REMEMBERED_LENGTH = 24;
const REMEMBERED_COUNT = 4_096;
/** What is remembered for a scalar YAML 1.1 reads otherwise, and for `null` (a Map's `get` cannot tell it from a miss otherwise). */
const REMEMBERED_YAML_11 = Symbol("yaml-1.1");
const REMEMBERED_NULL = Symbol("null");

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
  const remembered = new Map<string, unknown>();
  const resolve = (plain: string): unknown => {
    const first = plain.length === 0 ? "" : (plain[0] as string);
    const yaml11First = YAML_11_FIRST.has(first);
    const claimed = anyFirst || firstChars.has(first);
    if (!yaml11First && !claimed) return plain;
    const short = plain.length <= REMEMBERED_LENGTH;
    let value = short ? remembered.get(plain) : undefined;
    if (value === undefined) {
      if (yaml11First && YAML_11_PLAIN.test(plain)) value = REMEMBERED_YAML_11;
      else if (!claimed) value = plain;
      else value = resolver.resolveImplicitScalarTag(plain).value ?? REMEMBERED_NULL;
      if (short && remembered.size < REMEMBERED_COUNT) {
        // A copy, not the slice of the document it was read from, which it would keep alive.
        const own = Array.from(plain).join("");
        remembered.set(own, value === plain ? own : value);
      }
    }
    if (value === REMEMBERED_YAML_11) throw needsYaml11;
    return value === REMEMBERED_NULL ? null : value;
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
  /** Collections open around the node being read. */
  #depth = 0;
  /** Anchors by name. */
  readonly #anchors = new Map<string, Anchor>();
  /** Mappings and keys merged so far, counted as js-yaml counts them against its limit. */
  #mergeWork = 0;
  /**
   * The line of a `- key: value` entry whose mapping is being read, and the column of its key:
   * {@link #content} reads that line as indented to the key.
   */
  #compactRow = -1;
  #compactAt = 0;
  /** The cursor inside a flow collection: line and column. */
  #row = 0;
  #col = 0;

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
      const indent = this.#next === this.#compactRow ? this.#compactAt : indentOf(line);
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

  #enter(): void {
    this.#depth += 1;
    if (this.#depth > MAX_DEPTH) throw unsupported;
  }

  #mapping(indent: number): Record<string, unknown> {
    this.#enter();
    const out: Record<string, unknown> = {};
    let overridable: Set<string> | undefined;
    for (let i = this.#content(); i >= 0; i = this.#content()) {
      const line = this.#lines[i] as string;
      const at = this.#at;
      if (at < indent) break;
      if (at > indent) throw unsupported;
      // A sequence at a mapping's own indentation belongs to the key before it; here it is a mistake.
      if (isSequenceEntry(line, indent)) throw unsupported;
      const entry = this.#key(line, indent);
      if (entry === undefined) throw unsupported;
      this.#next = i + 1;
      const value = this.#value(line, entry.valueAt, indent, true);
      if (entry.merge) overridable = this.#merge(out, value, overridable);
      else overridable = assign(out, entry.key, value, overridable);
    }
    this.#depth -= 1;
    return out;
  }

  /**
   * Merges `source` (a mapping, or a list of mappings) under `<<` as js-yaml does: keys `out`
   * already has stay; the merged ones may be overridden once by a key written after them.
   */
  #merge(out: Record<string, unknown>, source: unknown, overridable: Set<string> | undefined): Set<string> {
    const sources: readonly unknown[] = Array.isArray(source) ? source : [source];
    if (sources.length > MAX_MERGE_SOURCES) throw unsupported;
    const merged = overridable ?? new Set<string>();
    for (const from of sources) {
      if (typeof from !== "object" || from === null || Array.isArray(from)) throw unsupported;
      const keys = Object.keys(from);
      this.#mergeWork += 1 + keys.length;
      if (this.#mergeWork > MAX_MERGE_WORK) throw unsupported;
      for (const key of keys) {
        if (Object.hasOwn(out, key)) continue;
        out[key] = (from as Record<string, unknown>)[key];
        merged.add(key);
      }
    }
    return merged;
  }

  #sequence(indent: number): unknown[] {
    this.#enter();
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
        this.#compactRow = i;
        this.#compactAt = start;
        this.#next = i;
        out.push(this.#mapping(start));
        continue;
      }
      this.#next = i + 1;
      out.push(this.#value(line, start, indent, false));
    }
    this.#depth -= 1;
    return out;
  }

  /**
   * The value that starts at `from` on `line` (or below it), belonging to an entry at `indent`;
   * `line` is the one before {@link #next}. Under a mapping key, a nested sequence may sit at the
   * key's own indentation.
   */
  #value(line: string, from: number, indent: number, underKey: boolean): unknown {
    let start = skipSpaces(line, from);
    let anchor: string | undefined;
    if (line.charCodeAt(start) === AMPERSAND) {
      const end = nameEnd(line, start + 1);
      if (end === start + 1 || (end < line.length && line.charCodeAt(end) !== SPACE)) throw unsupported;
      anchor = line.slice(start + 1, end);
      start = skipSpaces(line, end);
    }
    if (start >= line.length || line.charCodeAt(start) === HASH) {
      const i = this.#content();
      if (anchor !== undefined) {
        // `key: &name` and the anchored mapping or sequence below it.
        if (i < 0 || this.#at <= indent) throw unsupported;
        const defined = this.#define(anchor);
        defined.value = this.#block(this.#at);
        defined.done = true;
        return defined.value;
      }
      if (i < 0) return null;
      const next = this.#lines[i] as string;
      const at = this.#at;
      if (at > indent) return this.#block(at);
      if (underKey && at === indent && isSequenceEntry(next, indent)) return this.#sequence(indent);
      return null;
    }
    const defined = anchor === undefined ? undefined : this.#define(anchor);
    const c = line.charCodeAt(start);
    let value: unknown;
    if (c === 124 /* | */ || c === 62 /* > */) {
      value = this.#blockScalar(line, start, indent);
    } else {
      if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
        const quoted = readQuoted(line, start);
        if (quoted === undefined || !onlyComment(line, quoted.end)) throw unsupported;
        value = quoted.value;
      } else if (c === BRACKET_OPEN || c === BRACE_OPEN) {
        this.#row = this.#next - 1;
        this.#col = start;
        value = this.#flowCollection(indent);
        if (!onlyComment(this.#lines[this.#row] as string, this.#col)) throw unsupported;
        this.#next = this.#row + 1;
      } else if (c === ASTERISK) {
        if (anchor !== undefined) throw unsupported;
        const end = nameEnd(line, start + 1);
        if (!onlyComment(line, end)) throw unsupported;
        value = this.#alias(line.slice(start + 1, end));
      } else {
        value = this.#resolve(readPlain(line, start));
      }
      // A more indented line after a one-line value continues it (or is an error): leave it to js-yaml.
      const i = this.#content();
      if (i >= 0 && this.#at > indent) throw unsupported;
    }
    if (defined) {
      defined.value = value;
      defined.done = true;
    }
    return value;
  }

  /** Starts a definition of the anchor `name`, which aliases see once it is done. */
  #define(name: string): Anchor {
    const anchor = { value: null, done: false };
    this.#anchors.set(name, anchor);
    return anchor;
  }

  /** The value an alias names; an unknown name (an error) or an anchor still being read is left to js-yaml. */
  #alias(name: string): unknown {
    const anchor = this.#anchors.get(name);
    if (name === "" || anchor === undefined || !anchor.done) throw unsupported;
    return anchor.value;
  }

  /**
   * A literal (`|`) or folded (`>`) block scalar whose header is at `start`, for an entry at
   * `indent`, read as js-yaml reads it (its `getBlockValue`).
   */
  #blockScalar(line: string, start: number, indent: number): string {
    const folded = line.charCodeAt(start) === 62;
    let chomping: Chomping = "clip";
    let width = 0;
    let end = start + 1;
    for (; end < line.length; end += 1) {
      const c = line.charCodeAt(end);
      if (c === DASH || c === 43 /* + */) {
        if (chomping !== "clip") throw unsupported;
        chomping = c === DASH ? "strip" : "keep";
      } else if (c >= 49 && c <= 57) {
        if (width !== 0) throw unsupported;
        width = c - 48;
      } else break;
    }
    if (!onlyComment(line, end)) throw unsupported;
    const lines = this.#lines;
    let contentIndent = width === 0 ? -1 : indent + width;
    let widestEmpty = 0;
    const body: string[] = [];
    let i = this.#next;
    for (; i < lines.length; i += 1) {
      const text = lines[i] as string;
      const at = indentOf(text);
      if (at >= text.length) {
        // The text after the last line break is no line; spaces there are left to js-yaml.
        if (i === lines.length - 1) {
          if (text.length > 0) throw unsupported;
          break;
        }
        if (contentIndent < 0) widestEmpty = Math.max(widestEmpty, text.length);
        body.push(text);
        continue;
      }
      if (contentIndent < 0) {
        // The first line with text sets the indentation; blank lines before it may not be wider.
        if (at <= indent || widestEmpty > at) throw unsupported;
        contentIndent = at;
      }
      if (at < contentIndent) break;
      body.push(text);
    }
    // An empty block scalar is left to js-yaml.
    if (contentIndent < 0 || body.length === 0) throw unsupported;
    this.#next = i;
    return blockValue(body, contentIndent, chomping, folded);
  }

  /**
   * The flow collection (`[...]` or `{...}`) at the flow cursor, inside an entry at `indent`: its
   * continuation lines must be indented more than `indent`. The cursor ends after its closing bracket.
   */
  #flowCollection(indent: number): unknown {
    this.#enter();
    const isMapping = (this.#lines[this.#row] as string).charCodeAt(this.#col) === BRACE_OPEN;
    const close = isMapping ? BRACE_CLOSE : BRACKET_CLOSE;
    const list: unknown[] | undefined = isMapping ? undefined : [];
    const mapping: Record<string, unknown> | undefined = isMapping ? {} : undefined;
    let overridable: Set<string> | undefined;
    let readNext = true;
    this.#col += 1;
    for (;;) {
      let c = this.#flowSpace(indent);
      if (c === close) {
        this.#col += 1;
        break;
      }
      if (!readNext || c === COMMA || Number.isNaN(c)) throw unsupported;
      if (mapping) {
        const key = this.#flowKey();
        // The value may start on a later line: after `:`, any separation.
        this.#col += 1;
        c = this.#flowSpace(indent);
        const value = c === COMMA || c === close ? null : this.#flowNode(indent);
        if (key.merge) overridable = this.#merge(mapping, value, overridable);
        else overridable = assign(mapping, key.key, value, overridable);
      } else {
        (list as unknown[]).push(this.#flowNode(indent));
        // `[a: b]` is a mapping of one pair in a list: left to js-yaml.
        if (this.#flowSpace(indent) === COLON) throw unsupported;
      }
      c = this.#flowSpace(indent);
      readNext = c === COMMA;
      if (readNext) this.#col += 1;
    }
    this.#depth -= 1;
    return mapping ?? list;
  }

  /**
   * Moves the flow cursor past spaces, comments and line breaks, and returns the character it
   * stops at (NaN at the end of the text). A new line indented no more than `indent` is js-yaml's
   * "deficient indentation".
   */
  #flowSpace(indent: number): number {
    const lines = this.#lines;
    let line = lines[this.#row] as string;
    let moved = false;
    for (;;) {
      let col = this.#col;
      while (col < line.length && line.charCodeAt(col) === SPACE) col += 1;
      // A comment needs a space (or the start of the line) before it.
      if (col < line.length && !(line.charCodeAt(col) === HASH && (col === 0 || line.charCodeAt(col - 1) === SPACE))) {
        this.#col = col;
        if (moved && col <= indent) throw unsupported;
        return line.charCodeAt(col);
      }
      if (this.#row + 1 >= lines.length) {
        this.#col = line.length;
        return Number.NaN;
      }
      this.#row += 1;
      this.#col = 0;
      line = lines[this.#row] as string;
      moved = true;
    }
  }

  /** A flow mapping's key at the flow cursor: a string, quoted or plain, on the line of its `:` (left at the cursor). */
  #flowKey(): { key: string; merge: boolean } {
    const line = this.#lines[this.#row] as string;
    const c = line.charCodeAt(this.#col);
    let key: string;
    let merge = false;
    if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      const quoted = readQuoted(line, this.#col);
      if (quoted === undefined) throw unsupported;
      key = quoted.value;
      this.#col = quoted.end;
    } else {
      key = this.#flowPlain(line);
      if (key === "<<") merge = true;
      // Only keys that stay strings: `80:` or `true:` would be converted.
      else if (this.#resolve(key) !== key) throw unsupported;
    }
    this.#col = skipSpaces(line, this.#col);
    if (line.charCodeAt(this.#col) !== COLON) throw unsupported;
    return { key, merge };
  }

  /** A node inside a flow collection, at the flow cursor: a collection, quoted or plain scalar, or alias, with an optional anchor. */
  #flowNode(indent: number): unknown {
    const line = this.#lines[this.#row] as string;
    let c = line.charCodeAt(this.#col);
    let defined: Anchor | undefined;
    if (c === AMPERSAND) {
      const end = nameEnd(line, this.#col + 1);
      // The anchored node is on the same line, after a space.
      if (end === this.#col + 1 || line.charCodeAt(end) !== SPACE) throw unsupported;
      const anchor = line.slice(this.#col + 1, end);
      this.#col = skipSpaces(line, end);
      c = line.charCodeAt(this.#col);
      if (this.#col >= line.length || c === HASH || c === COMMA || c === BRACKET_CLOSE || c === BRACE_CLOSE) throw unsupported;
      defined = this.#define(anchor);
    }
    let value: unknown;
    if (c === BRACKET_OPEN || c === BRACE_OPEN) {
      value = this.#flowCollection(indent);
    } else if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      const quoted = readQuoted(line, this.#col);
      if (quoted === undefined) throw unsupported;
      value = quoted.value;
      this.#col = quoted.end;
    } else if (c === ASTERISK) {
      if (defined) throw unsupported;
      const end = nameEnd(line, this.#col + 1);
      const after = line.charCodeAt(end);
      if (end < line.length && after !== SPACE && !isFlowIndicator(after)) throw unsupported;
      value = this.#alias(line.slice(this.#col + 1, end));
      this.#col = end;
    } else {
      value = this.#resolve(this.#flowPlain(line));
    }
    if (defined) {
      defined.value = value;
      defined.done = true;
    }
    return value;
  }

  /**
   * A one-line plain scalar in flow context at the flow cursor, which moves to its end. One that
   * reaches the end of its line would go on (folded) on the next unless that line closes the item.
   */
  #flowPlain(line: string): string {
    const start = this.#col;
    const c = line.charCodeAt(start);
    if (INDICATORS.has(c)) {
      // `-1` and `-foo` are plain; a lone or spaced dash is not (and the rest are left to js-yaml).
      const next = line.charCodeAt(start + 1);
      if (c !== DASH || Number.isNaN(next) || next === SPACE || isFlowIndicator(next)) throw unsupported;
    }
    let i = start;
    for (; i < line.length; i += 1) {
      const d = line.charCodeAt(i);
      if (isFlowIndicator(d)) break;
      if (d === HASH && line.charCodeAt(i - 1) === SPACE) break;
      if (d === COLON) {
        const next = line.charCodeAt(i + 1);
        if (Number.isNaN(next) || next === SPACE || isFlowIndicator(next)) break;
      }
    }
    let end = i;
    while (end > start && line.charCodeAt(end - 1) === SPACE) end -= 1;
    if (end === start) throw unsupported;
    if (i === line.length && !this.#closesOnNextLine()) throw unsupported;
    this.#col = i;
    return line.slice(start, end);
  }

  /** Whether the next line with text after the flow cursor's starts with `,`, `]` or `}` (so a plain scalar ends). */
  #closesOnNextLine(): boolean {
    const lines = this.#lines;
    for (let row = this.#row + 1; row < lines.length; row += 1) {
      const text = lines[row] as string;
      const at = indentOf(text);
      if (at < text.length) {
        const c = text.charCodeAt(at);
        return c === COMMA || c === BRACKET_CLOSE || c === BRACE_CLOSE;
      }
    }
    return false;
  }

  /**
   * The key of a mapping entry that starts at column `at`, and where its value starts; undefined
   * when the line is not a `key: value` entry this reader takes. A plain `<<` is a merge.
   */
  #key(line: string, at: number): KeyEntry | undefined {
    const entry = splitKey(line, at);
    if (entry === undefined || entry.quoted) return entry;
    if (entry.key === "<<") {
      entry.merge = true;
      return entry;
    }
    // Only keys that stay strings: `80:` or `true:` would be converted.
    return this.#resolve(entry.key) === entry.key ? entry : undefined;
  }
}

/**
 * Sets `key` in a mapping being read. A key already there is a duplicate (an error) unless a merge
 * put it there and no key overrode it yet; inherited names (`constructor`, `__proto__`) are left to js-yaml.
 */
function assign(out: Record<string, unknown>, key: string, value: unknown, overridable: Set<string> | undefined): Set<string> | undefined {
  // Values are never undefined: anything found is a duplicate or inherited.
  if (out[key] !== undefined) {
    if (overridable === undefined || !overridable.has(key)) throw unsupported;
    overridable.delete(key);
  }
  out[key] = value;
  return overridable;
}

/**
 * The text of a block scalar from its lines (`body`, content at column `indent`), as js-yaml's
 * `getBlockValue` builds it: folded lines join with a space unless more indented or separated by
 * empty lines; the final line breaks are chomped.
 */
function blockValue(body: readonly string[], indent: number, chomping: Chomping, folded: boolean): string {
  let result = "";
  let didReadContent = false;
  let emptyLines = 0;
  let atMoreIndented = false;
  for (const line of body) {
    let column = 0;
    while (column < indent && line.charCodeAt(column) === SPACE) column += 1;
    if (column >= line.length) {
      emptyLines += 1;
      continue;
    }
    const content = line.slice(indent);
    if (folded) {
      if (content.charCodeAt(0) === SPACE) {
        atMoreIndented = true;
        result += "\n".repeat(didReadContent ? 1 + emptyLines : emptyLines);
      } else if (atMoreIndented) {
        atMoreIndented = false;
        result += "\n".repeat(emptyLines + 1);
      } else if (emptyLines === 0) {
        if (didReadContent) result += " ";
      } else {
        result += "\n".repeat(emptyLines);
      }
    } else {
      result += "\n".repeat(didReadContent ? 1 + emptyLines : emptyLines);
    }
    result += content;
    didReadContent = true;
    emptyLines = 0;
  }
  if (chomping === "keep") result += "\n".repeat(didReadContent ? 1 + emptyLines : emptyLines);
  else if (chomping === "clip" && didReadContent) result += "\n";
  return result;
}

function skipSpaces(line: string, from: number): number {
  let i = from;
  while (i < line.length && line.charCodeAt(i) === SPACE) i += 1;
  return i;
}

/** Where an anchor or alias name that starts at `from` ends. */
function nameEnd(line: string, from: number): number {
  let i = from;
  while (i < line.length && isNameChar(line.charCodeAt(i))) i += 1;
  return i;
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

/** A mapping entry's key, where its value starts, and whether the key is quoted or a merge (`<<`). */
interface KeyEntry {
  key: string;
  valueAt: number;
  quoted: boolean;
  merge: boolean;
}

/** Where a `key: value` entry's key and value are, when the line at column `at` is one. */
function splitKey(line: string, at: number): KeyEntry | undefined {
  const c = line.charCodeAt(at);
  if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
    const quoted = readQuoted(line, at);
    if (quoted === undefined || line.charCodeAt(quoted.end) !== COLON) return undefined;
    const after = quoted.end + 1;
    if (after < line.length && line.charCodeAt(after) !== SPACE) return undefined;
    return { key: quoted.value, valueAt: after, quoted: true, merge: false };
  }
  if (INDICATORS.has(c)) return undefined;
  for (let i = at; i < line.length; i += 1) {
    const d = line.charCodeAt(i);
    if (d === HASH && line.charCodeAt(i - 1) === SPACE) return undefined;
    if (d === COLON && (i + 1 === line.length || line.charCodeAt(i + 1) === SPACE)) {
      if (line.charCodeAt(i - 1) === SPACE) return undefined;
      return { key: line.slice(at, i), valueAt: i + 1, quoted: false, merge: false };
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

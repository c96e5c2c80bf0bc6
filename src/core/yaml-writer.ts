import type { Schema } from "js-yaml";
import { INDICATORS, plainResolverOf, type PlainResolver } from "./block-yaml.ts";
import { isRawJson } from "./json.ts";

/** Options for {@link writeBlockYaml}. */
export interface WriteOptions {
  /** Orders each mapping's keys. */
  compare: (a: string, b: string) => number;
  /** The schema js-yaml would dump with: a string that it resolves to another type is quoted. */
  schema: Schema;
}

const STRING_TAG = "tag:yaml.org,2002:str";

/** Thrown inside the writer to give up on a value; never escapes {@link writeBlockYaml}. */
class Unwritable extends Error {}
const unwritable = new Unwritable();

/**
 * Writes a value as block YAML exactly as js-yaml's `dump` does with `lineWidth: -1` (keys in
 * `compare` order, two-space indentation, sequences indented under their key), several times
 * faster: diffs write thousands of objects. Strings that js-yaml would write double-quoted or as
 * block scalars (line breaks, control and invisible characters), numbers other than integers,
 * array-index keys (which objects enumerate first) and very long keys are left to js-yaml:
 * undefined means "call dump".
 */
export function writeBlockYaml(value: unknown, options: WriteOptions): string | undefined {
  const writer = { compare: options.compare, resolver: plainResolverOf(options.schema) };
  // A document that is one scalar has rules of its own (`---` must be quoted there): dump's business.
  if (typeof value !== "object" || value === null || isRawJson(value)) return undefined;
  try {
    return `${node(writer, value, 0, true)}\n`;
  } catch (error) {
    // Nesting deeper than the stack is dump's to deal with, as it was before this writer.
    if (error === unwritable || error instanceof RangeError) return undefined;
    throw error;
  }
}

interface Writer {
  compare: (a: string, b: string) => number;
  resolver: PlainResolver;
}

function node(writer: Writer, value: unknown, level: number, compact: boolean): string {
  if (Array.isArray(value)) return value.length === 0 ? "[]" : sequence(writer, value, level, compact);
  if (typeof value === "object" && value !== null && !isRawJson(value)) {
    const keys = Object.keys(value);
    return keys.length === 0 ? "{}" : mapping(writer, value as Record<string, unknown>, keys, level, compact);
  }
  return scalar(writer, value, false);
}

function mapping(writer: Writer, record: Record<string, unknown>, keys: string[], level: number, compact: boolean): string {
  keys.sort(writer.compare);
  const pad = `\n${"  ".repeat(level)}`;
  let out = "";
  for (const key of keys) {
    if (ARRAY_INDEX.test(key) || key.length > 1024) throw unwritable;
    if (!compact || out !== "") out += pad;
    const text = node(writer, record[key], level + 1, false);
    out += `${scalar(writer, key, true)}${text.charCodeAt(0) === 10 ? ":" : ": "}${text}`;
  }
  return out;
}

function sequence(writer: Writer, items: readonly unknown[], level: number, compact: boolean): string {
  const pad = `\n${"  ".repeat(level)}`;
  let out = "";
  for (const item of items) {
    if (!compact || out !== "") out += pad;
    const text = node(writer, item, level + 1, true);
    out += text === "" || text.charCodeAt(0) === 10 ? `-${text}` : `- ${text}`;
  }
  return out;
}

/** Keys objects enumerate before all others, in numeric order, whatever order they were set in. */
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

function scalar(writer: Writer, value: unknown, isKey: boolean): string {
  if (typeof value === "string") return string(writer, value, isKey);
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "number" && Number.isInteger(value) && !Object.is(value, -0) && !String(value).includes("e")) return String(value);
  if (isRawJson(value)) return (value as { rawJSON: string }).rawJSON;
  throw unwritable;
}

/** Whitespace to JavaScript's `\s` that the checks above let through: js-yaml double-quotes a string of nothing else. */
function isUnicodeSpace(c: number): boolean {
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** A string plain when js-yaml writes it plain, single-quoted when it writes it so; anything else is left to js-yaml. */
function string(writer: Writer, text: string, isKey: boolean): string {
  if (text === "") return "''";
  let plain = true;
  let allSpaces = true;
  const length = text.length;
  for (let i = 0; i < length; i += 1) {
    const c = text.charCodeAt(i);
    // Line breaks, tabs, control and invisible characters: js-yaml writes those double-quoted or as blocks.
    if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c === 0x2028 || c === 0x2029 || c === 0xfeff || c === 0xfffe || c === 0xffff)
      throw unwritable;
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) throw unwritable;
      i += 1;
      allSpaces = false;
      continue;
    }
    if (c !== 32 && !isUnicodeSpace(c)) allSpaces = false;
    if (!plain) continue;
    if (i === 0 && c === 32) {
      plain = false;
    } else if (i === 0 && INDICATORS.has(c)) {
      const next = text.charCodeAt(1);
      if (!(c === 45 || c === 63 || c === 58) || !(next > 32)) plain = false;
    } else if (c === 58 /* : */) {
      const next = text.charCodeAt(i + 1);
      if (!(next > 32)) plain = false;
    } else if (c === 35 /* # */ && text.charCodeAt(i - 1) === 32) {
      plain = false;
    }
  }
  if (allSpaces) throw unwritable;
  if (plain && text.charCodeAt(length - 1) === 32) plain = false;
  if (plain && text === "=") plain = false;
  if (plain && writer.resolver.resolveImplicitScalarTag(text).tag.tagName !== STRING_TAG) plain = false;
  if (plain) return text;
  if (isKey && text.length > 1024) throw unwritable;
  return `'${text.replaceAll("'", "''")}'`;
}

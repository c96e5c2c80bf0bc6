import fc from "fast-check";
import { CORE_SCHEMA, load, mergeTag } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { nestedValues } from "../../helpers/arbitraries.ts";
import { readBlockYaml, UNSUPPORTED, YAML_11 } from "../../../src/core/block-yaml.ts";

// The fast reader against js-yaml on documents written the way people write manifests by hand
// (issue 28, item 4): block and flow collections mixed, flow collections over several lines,
// literal and folded scalars with chomping and indentation indicators, anchors, aliases, merge
// keys, full-line and trailing comments, trailing spaces. The writer below is deliberately loose:
// it also writes documents js-yaml refuses or reads unlike the data it came from. Whatever the
// text, the reader must give js-yaml's value or leave the document to it.

const SCHEMA = CORE_SCHEMA.withTags(mergeTag);

type Gen = fc.GeneratorValue;

/** Whether a draw of `g` falls under `percent`. */
function chance(g: Gen, percent: number): boolean {
  return g(fc.integer, { min: 0, max: 99 }) < percent;
}

function pick<T>(g: Gen, options: readonly T[]): T {
  return options[g(fc.integer, { min: 0, max: options.length - 1 })] as T;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Writes one document from `data` (a mapping at its root), making every choice of style with `g`. */
class HandWriter {
  readonly #g: Gen;
  readonly #lines: string[] = [];
  /** Anchors written so far, and whether each names a mapping (so it may be merged). */
  readonly #anchors: { name: string; mapping: boolean }[] = [];

  constructor(g: Gen) {
    this.#g = g;
  }

  document(data: Record<string, unknown>): string {
    if (chance(this.#g, 30)) this.#lines.push("# a comment before the object");
    this.#mapping(data, 0);
    return `${this.#lines.join("\n")}\n`;
  }

  #push(line: string): void {
    // Trailing spaces now and then, and a full-line comment at any indentation.
    this.#lines.push(chance(this.#g, 8) ? `${line}  ` : line);
    if (chance(this.#g, 6)) this.#lines.push(`${" ".repeat(this.#g(fc.integer, { min: 0, max: 8 }))}# note: a: [b] {c} #d`);
  }

  #trailing(): string {
    return chance(this.#g, 12) ? pick(this.#g, ["  # trailing", " #x", " # a: b, [c]"]) : "";
  }

  #mapping(map: Record<string, unknown>, indent: number): void {
    const pad = " ".repeat(indent);
    const merges = this.#anchors.filter((anchor) => anchor.mapping);
    const entries = Object.entries(map);
    const mergeAt = merges.length > 0 && chance(this.#g, 25) ? this.#g(fc.integer, { min: 0, max: entries.length }) : -1;
    if (entries.length === 0 && mergeAt < 0) this.#push(`${pad}empty: {}`);
    entries.forEach(([key, value], index) => {
      if (index === mergeAt) this.#merge(pad, merges);
      this.#value(value, indent, `${pad}${this.#key(key)}:`, true);
    });
    if (mergeAt === entries.length) this.#merge(pad, merges);
  }

  #merge(pad: string, merges: readonly { name: string }[]): void {
    const names = Array.from({ length: this.#g(fc.integer, { min: 1, max: 2 }) }, () => `*${pick(this.#g, merges).name}`);
    this.#push(`${pad}<<: ${names.length === 1 && chance(this.#g, 70) ? names[0] : `[${names.join(", ")}]`}${this.#trailing()}`);
  }

  #key(key: string): string {
    if (/^[a-z][a-z0-9.\-/]*$/.test(key) && chance(this.#g, 85)) return key;
    return chance(this.#g, 50) ? JSON.stringify(key) : `'${key.replaceAll("'", "''")}'`;
  }

  /** Writes `value` after `prefix` (`key:` or `-`), at an entry of column `indent`. */
  #value(value: unknown, indent: number, prefix: string, underKey: boolean): void {
    const g = this.#g;
    if (this.#anchors.length > 0 && chance(g, 8)) {
      this.#push(`${prefix} *${pick(g, this.#anchors).name}${this.#trailing()}`);
      return;
    }
    let anchor = "";
    let pending: { name: string; mapping: boolean } | undefined;
    if (chance(g, 12)) {
      const name = pick(g, ["base", "x", "defaults", "a-1", "n.2"]);
      anchor = `&${name} `;
      // The anchor is usable once the value is written: an alias inside it would be recursive.
      pending = { name, mapping: isMap(value) };
    }
    const child = indent + 2;
    if (Array.isArray(value) || isMap(value)) {
      const empty = Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;
      const style = empty ? "flow" : pick(g, ["block", "block", "flow", "flow-lines"]);
      if (style === "flow") this.#push(`${prefix} ${anchor}${this.#flow(value)}${this.#trailing()}`);
      else if (style === "flow-lines") this.#flowLines(value, indent, `${prefix} ${anchor}`);
      else {
        this.#push(`${prefix}${anchor === "" ? "" : ` ${anchor.trimEnd()}`}${this.#trailing()}`);
        if (Array.isArray(value)) {
          // A list under a key may sit at the key's own column.
          const at = underKey && anchor === "" && chance(g, 40) ? indent : child;
          for (const item of value) this.#item(item, at);
        } else this.#mapping(value, child);
      }
    } else if (typeof value === "string" && chance(g, 35)) {
      this.#blockScalar(value, indent, `${prefix} ${anchor}`);
    } else {
      this.#push(`${prefix} ${anchor}${this.#scalar(value, false)}${this.#trailing()}`);
    }
    if (pending) this.#anchors.push(pending);
  }

  #item(item: unknown, indent: number): void {
    const pad = " ".repeat(indent);
    if (isMap(item) && Object.keys(item).length > 0 && chance(this.#g, 75)) {
      // `- key: value`: the mapping's first line shares the dash.
      const start = this.#lines.length;
      this.#mapping(item, indent + 2);
      const first = this.#lines[start] ?? "";
      this.#lines[start] = `${pad}- ${first.slice(indent + 2)}`;
      return;
    }
    this.#value(item, indent, `${pad}-`, false);
  }

  #blockScalar(text: string, indent: number, prefix: string): void {
    const g = this.#g;
    const indicator = chance(g, 30) ? "2" : "";
    const chomping = pick(g, ["", "-", "+"]);
    const header = `${pick(g, ["|", ">"])}${chance(g, 50) ? indicator + chomping : chomping + indicator}`;
    this.#lines.push(`${prefix}${header}${this.#trailing()}`);
    const pad = " ".repeat(indent + 2);
    for (const line of text.split("\n")) this.#lines.push(line === "" && chance(g, 50) ? "" : `${pad}${line}`);
  }

  #scalar(value: unknown, inFlow: boolean): string {
    if (typeof value !== "string") return value === null && chance(this.#g, 30) ? "~" : String(value);
    const unsafe = inFlow ? /[,[\]{}#:'"\n]|^[-?&*!|>%@`\s]|\s$/ : /[#:'"\n]|^[-?&*!|>%@`[\]{},\s]|\s$/;
    if (!unsafe.test(value) && value !== "" && chance(this.#g, 80)) return value;
    return chance(this.#g, 50) ? JSON.stringify(value) : `'${value.replaceAll("'", "''").replaceAll("\n", "\n\n")}'`;
  }

  #flow(value: unknown): string {
    if (Array.isArray(value)) {
      const items = value.map((item) => this.#flowNode(item));
      return `[${items.join(pick(this.#g, [", ", ",", " , "]))}${items.length > 0 && chance(this.#g, 15) ? "," : ""}]`;
    }
    if (isMap(value)) {
      const pairs = Object.entries(value).map(([key, item]) => `${this.#flowKey(key)}: ${this.#flowNode(item)}`);
      return `{${pick(this.#g, ["", " "])}${pairs.join(", ")}${pick(this.#g, ["", " "])}}`;
    }
    return this.#scalar(value, true);
  }

  #flowKey(key: string): string {
    return /^[a-z][a-z0-9.\-/]*$/.test(key) && chance(this.#g, 85) ? key : JSON.stringify(key);
  }

  #flowNode(value: unknown): string {
    if (this.#anchors.length > 0 && chance(this.#g, 5)) return `*${pick(this.#g, this.#anchors).name}`;
    return this.#flow(value);
  }

  /** A flow collection over several lines, items at `indent + 4`, the closing bracket at `indent + 2` (or, now and then, at `indent`: an error). */
  #flowLines(value: unknown[] | Record<string, unknown>, indent: number, prefix: string): void {
    const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    this.#lines.push(`${prefix}${open}${this.#trailing()}`);
    const items = Array.isArray(value)
      ? value.map((item) => this.#flowNode(item))
      : Object.entries(value).map(([key, item]) => `${this.#flowKey(key)}: ${this.#flowNode(item)}`);
    const pad = " ".repeat(indent + 4);
    items.forEach((item, index) => {
      this.#push(`${pad}${item}${index < items.length - 1 ? "," : ""}${this.#trailing()}`);
    });
    this.#lines.push(`${" ".repeat(chance(this.#g, 10) ? indent : indent + 2)}${close}`);
  }
}

const scalar = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9 .\-/]{0,10}$/),
  fc.string({ unit: fc.constantFrom(...Array.from("ab -:#'\"[]{},.019\n")), maxLength: 14 }),
  fc.constantFrom(
    "50m",
    "64Mi",
    "--port=8080",
    "a#b",
    "a[b]",
    "x: y",
    "#",
    "",
    " lead",
    "trail ",
    "a\n\nb\n",
    "l1\n  l2\nl3",
    "yes",
    "0755",
  ),
  fc.integer({ min: -1000, max: 100_000 }),
  fc.boolean(),
  fc.constant(null),
);
const key = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9.\-/]{0,10}$/),
  fc.constantFrom("app.kubernetes.io/name", "a: b", "#", "[x]", "{y}", "it's", "<<", "80", "on"),
);
const data = fc.dictionary(key, nestedValues(scalar, key, { maxKeys: 4 }), { minKeys: 1, maxKeys: 5 });

/** What js-yaml reads (the reference), or "error". */
function reference(text: string): unknown {
  try {
    return load(text, { schema: SCHEMA });
  } catch {
    return "error";
  }
}

const outcomes = { taken: 0, left: 0, valid: 0 };

afterAll(() => {
  console.log(
    `hand-written documents: ${outcomes.taken} taken by the reader, ${outcomes.left} left to js-yaml or the YAML 1.1 parser (of the ${outcomes.valid} that js-yaml reads and YAML 1.1 reads alike, ${outcomes.taken} taken)`,
  );
});

describe("readBlockYaml against js-yaml on hand-written documents", () => {
  it("gives js-yaml's value for every document it takes, and takes most valid ones", () => {
    let validTaken = 0;
    let valid = 0;
    fc.assert(
      fc.property(data, fc.gen(), (value, g) => {
        const text = new HandWriter(g).document(value);
        const read = readBlockYaml(text, SCHEMA);
        const expected = reference(text);
        // A document with a plain scalar YAML 1.1 reads otherwise goes to the YAML 1.1 parser, rightly.
        if (expected !== "error" && read !== YAML_11) valid += 1;
        outcomes.valid = valid;
        if (read === UNSUPPORTED || read === YAML_11) {
          outcomes.left += 1;
          return;
        }
        outcomes.taken += 1;
        validTaken += 1;
        expect(expected, `js-yaml refuses what the reader took:\n${text}`).not.toBe("error");
        expect(JSON.stringify(read), text).toBe(JSON.stringify(expected));
      }),
      { numRuns: 3_000 },
    );
    // The writer's shapes are the reader's: most documents js-yaml reads are read without it.
    expect(validTaken / valid).toBeGreaterThan(0.8);
  });

  it("never takes a mangled hand-written document differently from js-yaml", () => {
    const base = `# hand-written
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: &labels {app: web}}
spec:
  selector:
    matchLabels: *labels
  template:
    spec:
      containers:
      - name: web
        args: ["--port=8080", --verbose]  # flags
        resources: &res
          requests: {cpu: 50m, memory: 64Mi}
        env: [
          {name: A, value: "1"},
          {name: B, value: 'x # y'}
          ]
        config: >-
          folded
          text
      - <<: *res
        name: sidecar
        script: |2
           indented
          run
`;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.nat(base.length),
            fc.nat(3),
            fc.string({ unit: fc.constantFrom(...Array.from(" -:#'\"|>\n\\{}[],&*<2+xy0")), maxLength: 3 }),
          ),
          { minLength: 1, maxLength: 3 },
        ),
        (edits) => {
          let text = base;
          for (const [at, remove, insert] of edits) text = text.slice(0, at) + insert + text.slice(at + remove);
          const read = readBlockYaml(text, SCHEMA);
          if (read === UNSUPPORTED || read === YAML_11) return;
          const expected = reference(text);
          expect(expected, `js-yaml refuses what the reader took:\n${text}`).not.toBe("error");
          expect(JSON.stringify(read), text).toBe(JSON.stringify(expected));
        },
      ),
      { numRuns: 5_000 },
    );
  });
});

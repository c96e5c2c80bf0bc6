import { CORE_SCHEMA, load, mergeTag } from "js-yaml";
import { describe, expect, it } from "vitest";
import { readBlockYaml, UNSUPPORTED, YAML_11 } from "../../../src/core/block-yaml.ts";
import { parseManifests } from "../../../src/core/manifest.ts";

// Manifests as people write them (issue 28, item 4): flow collections, multi-line strings,
// anchors, aliases, merge keys and comments, read by the fast reader with js-yaml's result.

const SCHEMA = CORE_SCHEMA.withTags(mergeTag);

/** What js-yaml reads, or the first line of its error. */
function reference(text: string): { value: unknown } | { error: string } {
  try {
    return { value: load(text, { schema: SCHEMA }) };
  } catch (error) {
    return { error: (error as Error).message.split("\n")[0] ?? "" };
  }
}

/** The reader takes `text` (neither leaves it to js-yaml nor to the YAML 1.1 parser) and gives js-yaml's value. */
function taken(text: string): unknown {
  const value = readBlockYaml(text, SCHEMA);
  expect(value, `left to js-yaml:\n${text}`).not.toBe(UNSUPPORTED);
  expect(value, `left to the YAML 1.1 parser:\n${text}`).not.toBe(YAML_11);
  const expected = reference(text);
  expect(expected, `js-yaml refuses what the reader took:\n${text}`).toHaveProperty("value");
  // JSON keeps key order and tells 1 from "1".
  expect(JSON.stringify(value), text).toBe(JSON.stringify((expected as { value: unknown }).value));
  return value;
}

/** The reader leaves `text` to js-yaml, which reports an error matching `error`. */
function leftWithError(text: string, error: RegExp): void {
  expect(readBlockYaml(text, SCHEMA), JSON.stringify(text)).toBe(UNSUPPORTED);
  const expected = reference(text);
  expect(expected, text).toHaveProperty("error");
  expect((expected as { error: string }).error, text).toMatch(error);
}

describe("readBlockYaml on hand-written manifests", () => {
  it("reads flow sequences and mappings, nested, empty and with quoted items", () => {
    expect(
      taken(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web, tier: "front"}}
spec:
  template:
    spec:
      containers:
      - name: web
        args: ["--port=8080", '--log-level=info', --verbose]
        ports: [{containerPort: 8080, protocol: TCP}, {containerPort: 9090}]
        resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {}}
        command: []
        env: [ ]
        securityContext: { }
`),
    ).toMatchObject({
      metadata: { name: "web", labels: { app: "web", tier: "front" } },
      spec: { template: { spec: { containers: [{ args: ["--port=8080", "--log-level=info", "--verbose"], command: [] }] } } },
    });
    expect(taken("a: [[1, [2, []]], {b: {c: [d]}}, {}]\n")).toEqual({ a: [[1, [2, []]], { b: { c: ["d"] } }, {}] });
    expect(taken("a: [x, z, ]\nb: {k: v, }\n")).toEqual({ a: ["x", "z"], b: { k: "v" } });
    expect(taken("a: {\"k\":v, 'q': 1, e: , f: }\n")).toEqual({ a: { k: "v", q: 1, e: null, f: null } });
  });

  it("reads flow mappings whose quoted keys hold ': ' and flow indicators", () => {
    expect(taken('a: {"x: y": 1, \'[z]\': "{w}", "#": "# not a comment"}\n')).toEqual({
      a: { "x: y": 1, "[z]": "{w}", "#": "# not a comment" },
    });
  });

  it("reads `[`, `]`, `{` and `}` inside block plain scalars as text", () => {
    expect(taken("key: a[b]\nother: x{y}, z\nlast: a]b\n")).toEqual({ key: "a[b]", other: "x{y}, z", last: "a]b" });
  });

  it("tells comments from `#` inside quotes and plain scalars, in block and flow context", () => {
    expect(
      taken(`# leading comment
a: a#b # trailing comment
b: "x # y" # comment
c: [a#b, 'c # d', e] # comment
d: {k: v#w, l: "#"}   # comment
  # an indented comment line
e: |
  # not a comment
  x # neither
`),
    ).toEqual({ a: "a#b", b: "x # y", c: ["a#b", "c # d", "e"], d: { k: "v#w", l: "#" }, e: "# not a comment\nx # neither\n" });
  });

  it("reads flow collections that span lines, with comments between items", () => {
    expect(
      taken(`spec:
  args: [
    "--port=8080",  # the port
    --verbose,

    # a comment line inside
    --debug
    ]
  resources: {
    requests: {cpu: 50m,
               memory: 64Mi},
    limits: {cpu: 100m}
   }
next: 1
`),
    ).toEqual({
      spec: {
        args: ["--port=8080", "--verbose", "--debug"],
        resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "100m" } },
      },
      next: 1,
    });
    // A closing bracket at the key's own column is "deficient indentation" to js-yaml.
    leftWithError("args: [\n  a,\n  b\n]\n", /deficient indentation/);
    leftWithError("spec:\n  resources: {\n    cpu: 1\n  }\n", /deficient indentation/);
    // A plain scalar continued on the next line is folded: left to js-yaml.
    expect(readBlockYaml("args: [a\n  b]\n", SCHEMA)).toBe(UNSUPPORTED);
  });

  it("reads literal and folded block scalars with every chomping and indentation indicator", () => {
    expect(
      taken(`literal: |
  one
    two

  three
strip: |-
  text


keep: |+
  text


folded: >
  one
  two

  three
    indented
  back
folded-strip: >-
  a
  b
folded-keep: >+
  a

indicator: |2
   leading space
  x
indicator-strip: |2-
   y
indicator-keep: |-1
 z

list:
- |2
   in a list
- >-
  folded
  in a list
end: 1
`),
    ).toEqual({
      literal: "one\n  two\n\nthree\n",
      strip: "text",
      keep: "text\n\n\n",
      folded: "one two\nthree\n  indented\nback\n",
      "folded-strip": "a b",
      "folded-keep": "a\n\n",
      indicator: " leading space\nx\n",
      "indicator-strip": " y",
      "indicator-keep": "z",
      list: [" in a list\n", "folded in a list"],
      end: 1,
    });
  });

  it("keeps trailing spaces where YAML does and drops them where it does not", () => {
    expect(taken("a: b   \nc: [d ,  e  ]  \nf: |\n  g  \n  h\ni: >\n  j  \n  k\n")).toEqual({
      a: "b",
      c: ["d", "e"],
      f: "g  \nh\n",
      i: "j   k\n",
    });
  });

  it("reads anchors and aliases, in block and flow context", () => {
    const value = taken(`metadata:
  labels: &labels
    app: web
  annotations: &empty {}
spec:
  selector:
    matchLabels: *labels
  ports: [&http 80, *http]
  list:
  - &item {a: 1}
  - *item
  - &scalar text
  - *scalar # an alias with a comment
`) as { metadata: { labels: unknown }; spec: { selector: { matchLabels: unknown } } };
    expect(value.spec.selector.matchLabels).toEqual({ app: "web" });
  });

  it("merges an alias to a mapping under `<<`, explicit keys winning wherever they are", () => {
    expect(
      taken(`defaults: &defaults
  cpu: 50m
  memory: 64Mi
limits: &limits {cpu: 1, gpu: 0}
small:
  <<: *defaults
  memory: 32Mi
large:
  cpu: 2
  <<: [*defaults, *limits]
flow: {<<: *defaults, extra: true}
inline:
  <<: {a: 1, b: 2}
  b: 3
`),
    ).toEqual({
      defaults: { cpu: "50m", memory: "64Mi" },
      limits: { cpu: 1, gpu: 0 },
      small: { cpu: "50m", memory: "32Mi" },
      large: { cpu: 2, memory: "64Mi", gpu: 0 },
      flow: { cpu: "50m", memory: "64Mi", extra: true },
      inline: { a: 1, b: 3 },
    });
  });

  it("takes the latest definition of an anchor defined twice", () => {
    expect(taken("a: &x 1\nb: *x\nc: &x {k: v}\nd: *x\n")).toEqual({ a: 1, b: 1, c: { k: "v" }, d: { k: "v" } });
  });

  it("leaves the errors of these shapes to js-yaml", () => {
    leftWithError("a: *x\nb: &x 1\n", /unidentified alias/);
    leftWithError("a: {k: 1, k: 2}\n", /duplicated mapping key/);
    leftWithError("a: [x, y\nb: 1\n", /./);
    leftWithError("a: [- x]\n", /./);
    leftWithError("a: 1\n<<: 2\n", /cannot merge/);
    leftWithError("b:\n  k: 1\n  k: 2\n  <<: {k: 3}\n", /duplicated mapping key/);
    leftWithError("a: |0\n  x\n", /indentation width/);
    leftWithError("a: |--\n  x\n", /chomping/);
  });

  it("keeps the YAML 1.1 decision for plain scalars in flow collections", () => {
    for (const text of ["a: [yes, b]\n", "a: {mode: 0755}\n", "a: {on: 1}\n", "a: &x [y]\n"])
      expect(readBlockYaml(text, SCHEMA), text).toBe(YAML_11);
    expect(taken("a: ['yes', \"0755\"]\n")).toEqual({ a: ["yes", "0755"] });
  });

  it("resolves a plain scalar met again exactly as the first time (null, numbers, YAML 1.1 words)", () => {
    for (let round = 0; round < 2; round++) {
      expect(taken("timeoutSeconds: null\nnodeSelector: {v: ~, t: true, p: 8080, f: 1.5, s: Null}\n")).toEqual({
        timeoutSeconds: null,
        nodeSelector: { v: null, t: true, p: 8080, f: 1.5, s: null },
      });
      expect(readBlockYaml("a: [yes]\n", SCHEMA)).toBe(YAML_11);
      expect(readBlockYaml("on: 1\n", SCHEMA)).toBe(YAML_11);
    }
  });

  it("leaves flow nesting js-yaml refuses (100 levels and more) to it", () => {
    const deep = (levels: number): string => `a: ${"[".repeat(levels)}${"]".repeat(levels)}\n`;
    expect(taken(deep(50))).toBeDefined();
    leftWithError(deep(120), /maxDepth/);
  });

  it("leaves block nesting of 100 levels, which js-yaml refuses, to it", () => {
    let block = "";
    for (let depth = 0; depth < 100; depth++) block += `${" ".repeat(depth)}k:\n`;
    leftWithError(block, /maxDepth/);
  });

  it("still refuses alias bombs the reader now takes", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (const [i, name] of Array.from("bcdef").entries()) bomb.push(`${name}: &${name} [${Array(10).fill(`*${"abcdef"[i]}`).join(", ")}]`);
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n${bomb.join("\n")}\n`;
    expect(readBlockYaml(text, SCHEMA)).not.toBe(UNSUPPORTED);
    const { objects, problems } = parseManifests(text, { file: "bomb.yaml" });
    expect(objects).toEqual([]);
    expect(problems).toEqual([
      expect.objectContaining({ file: "bomb.yaml", message: expect.stringMatching(/^invalid YAML: .*alias/i) as string }),
    ]);
  });

  it("names the file and line of an error in a hand-written document after one the reader took", () => {
    const text =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: [x, y]}\n---\n# comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: 1, k: 2}\n";
    const { objects, problems } = parseManifests(text, { file: "cm.yaml" });
    expect(objects).toEqual([expect.objectContaining({ source: { file: "cm.yaml", line: 1 } })]);
    expect(problems).toEqual([
      expect.objectContaining({ file: "cm.yaml", line: 10, message: expect.stringContaining("invalid YAML") as string }),
    ]);
  });
});

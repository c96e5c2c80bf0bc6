import fc from "fast-check";
import { CORE_SCHEMA, dump, load, mergeTag } from "js-yaml";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { nestedValues } from "../../helpers/arbitraries.ts";
import { readBlockYaml, UNSUPPORTED, YAML_11 } from "../../../src/core/block-yaml.ts";
import { parseManifests } from "../../../src/core/manifest.ts";

const SCHEMA = CORE_SCHEMA.withTags(mergeTag);

/** What js-yaml reads (the reference), or "error". */
function reference(text: string): unknown {
  try {
    return load(text, { schema: SCHEMA });
  } catch {
    return "error";
  }
}

/** The reader must give what js-yaml gives, or leave the document to it; never another value, never a value for an error. */
function agrees(text: string): boolean {
  const value = readBlockYaml(text, SCHEMA);
  if (value === UNSUPPORTED || value === YAML_11) return true;
  const expected = reference(text);
  expect(expected, `js-yaml refuses what the block reader took:\n${text}`).not.toBe("error");
  // JSON keeps key order and tells 1 from "1"; -0 and NaN never come out of the reader's shapes.
  expect(JSON.stringify(value), text).toBe(JSON.stringify(expected));
  return true;
}

function taken(text: string): unknown {
  const value = readBlockYaml(text, SCHEMA);
  expect(value, `left to js-yaml:\n${text}`).not.toBe(UNSUPPORTED);
  expect(value, `left to the YAML 1.1 parser:\n${text}`).not.toBe(YAML_11);
  agrees(text);
  return value;
}

describe("readBlockYaml", () => {
  it("reads manifests in the shapes renderers and people write them", () => {
    const deployment = `# a comment before the object
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # trailing comment
  labels:
    app.kubernetes.io/name: web
    "helm.sh/chart": 'web-1.2.3'
  annotations: {}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
`;
    expect(taken(deployment)).toMatchObject({ spec: { selector: { matchLabels: { app: "web" } } } });
    expect(
      taken(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # trailing comment
  labels:
    app.kubernetes.io/name: web
    "helm.sh/chart": 'web-1.2''s'
spec:
  replicas: 3
  paused: false
  progressDeadlineSeconds: 600.5
  minReadySeconds: -1
  template:
    spec:
      containers:
      - name: web
        image: ghcr.io/example/web:1.2.3@sha256:abc
        args: []
        env:
          - name: URL
            value: "http://example.com/a?b=c#d"
          - name: EMPTY
            value:
          - name: ESCAPED
            value: "tab\\there \\u00e9 \\"q\\" \\\\"
        resources:
          limits: {}
          requests:
            cpu: 100m
            memory: 128Mi
      volumes:
      -
        name: config
        configMap:
          name: ~
`),
    ).toMatchObject({
      metadata: { labels: { "helm.sh/chart": "web-1.2's" } },
      spec: { replicas: 3, progressDeadlineSeconds: 600.5, minReadySeconds: -1 },
    });
  });

  it("reads literal block scalars with their chomping", () => {
    expect(
      taken(`data:
  script.sh: |
    #!/bin/sh

      indented
    echo "done" # not a comment
  stripped: |-
    one
    two


  after: x
`),
    ).toEqual({ data: { "script.sh": '#!/bin/sh\n\n  indented\necho "done" # not a comment\n', stripped: "one\ntwo", after: "x" } });
    expect(taken("- |\n  a\n- b\n")).toEqual(["a\n", "b"]);
    expect(taken("a: |\n\n  x\n")).toEqual({ a: "\nx\n" });
  });

  it("reads sequences at their key's indentation and compact mappings in sequences", () => {
    expect(taken("a:\n- x\n- k: 1\n  z: 2\nb: c\n")).toEqual({ a: ["x", { k: 1, z: 2 }], b: "c" });
    expect(taken("- a:\n  - 1\n  b: 2\n- 3\n")).toEqual([{ a: [1], b: 2 }, 3]);
  });

  it("resolves plain scalars with js-yaml's core schema", () => {
    for (const scalar of [
      "null",
      "Null",
      "~",
      "true",
      "FALSE",
      "0",
      "-12",
      "0x1F",
      "1.5",
      "1e3",
      ".inf",
      "-.inf",
      "1.2.3",
      "100m",
      "1Gi",
      "2024-01-01",
      "+1",
      "-foo",
      "a:b",
      "a#b",
    ])
      agrees(`k: ${scalar}\n`);
    expect(taken("k: 0x1F\n")).toEqual({ k: 31 });
    expect(taken("k: 2024-01-01\n")).toEqual({ k: "2024-01-01" });
  });

  it("stops at plain scalars that YAML 1.1 reads otherwise, in keys and values, and not at quoted ones", () => {
    for (const text of [
      "a: yes\n",
      "a: off\n",
      "mode: 0755\n",
      "n: 1_000\n",
      "t: 1:20\n",
      "o: 0o17\n",
      "o: 0o_7\n",
      "x: +0x1F\n",
      "x: -0x1F\n",
      "x: 0x_1\n",
      "x: [-0x1F]\n",
      "big: 12345678901234567\n",
      "- y\n",
      "on: 1\n",
    ])
      expect(readBlockYaml(text, SCHEMA), text).toBe(YAML_11);
    expect(taken("a: 'yes'\nmode: \"0755\"\nlist:\n- |\n  on\n")).toEqual({ a: "yes", mode: "0755", list: ["on\n"] });
  });

  it("leaves everything outside its shape to js-yaml", () => {
    for (const text of [
      "a: !!str 1\n", // tags
      "a: 1\na: 2\n", // duplicate keys
      "__proto__: 1\n",
      "a: b\n  c\n", // multi-line plain scalar
      'a: "b\n  c"\n', // multi-line quoted scalar
      "a:\n\tb: 1\n", // tab indentation
      "a: 1\r\n", // carriage return
      "? a\n: b\n", // complex key
      "80: http\n", // a key that is not a string
      "true: 1\n",
      "just a scalar\n",
      "a: b: c\n", // an error
      "a: 1\n  b: 2\n", // an error
      "- - a\n", // compact nested sequence
      'a: "\\ud800"\n', // half a surrogate pair
      'a: "\\N"\n',
      "a: \u0007\n", // control character
      "",
      "# only a comment\n",
    ]) {
      expect(readBlockYaml(text, SCHEMA), JSON.stringify(text)).toBe(UNSUPPORTED);
      agrees(text);
    }
  });

  it("leaves nesting deeper than the stack to the other parsers, which report it", () => {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n";
    for (let depth = 0; depth < 6_000; depth++) text += `${" ".repeat(2 + depth)}k:\n`;
    expect(readBlockYaml(text, SCHEMA)).toBe(UNSUPPORTED);
    const read = parseManifests(text, { file: "deep.yaml" });
    expect(read.objects.length + read.problems.length).toBe(1);
  });

  const scalar = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.string({ unit: fc.constantFrom(...Array.from("ab -:#'\"\\|>&*!?[]{},.0189xeE+~\n\t")), maxLength: 12 }),
    fc.constantFrom("null", "true", "FALSE", "0x1F", "1e3", ".nan", "-", "<<", "0o7", "1_000", "- a", "a: b", "a #b"),
    fc.integer(),
    fc.double({ noDefaultInfinity: false }),
    fc.boolean(),
    fc.constant(null),
  );
  const key = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.stringMatching(/^[a-z][a-z0-9.\-/]{0,10}$/),
    fc.constantFrom("<<", "80", "true", "a b", "a:b", "#"),
  );
  const value = nestedValues(scalar, key, { maxKeys: 4 });

  it("reads what YAML writers write exactly as js-yaml does", () => {
    fc.assert(
      fc.property(value, fc.boolean(), (data, flowLevel) => {
        agrees(dump(data, { lineWidth: -1, ...(flowLevel ? { flowLevel: 2 } : {}) }));
        agrees(dump(data, { lineWidth: 20 }));
        agrees(stringify(data, { lineWidth: 0 }));
        agrees(stringify(data, { indentSeq: false }));
        return true;
      }),
      { numRuns: 1_000 },
    );
  });

  it("never takes a mangled document differently from js-yaml", () => {
    const base = `apiVersion: v1
kind: ConfigMap
metadata:
  name: a # c
  labels:
    x: "y"
data:
  k: |
    line
  list:
  - 1
  - "two"
  - three: 3
    four: '4'
`;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.nat(base.length),
            fc.nat(3),
            fc.string({ unit: fc.constantFrom(...Array.from(" -:#'\"|>\n\\{}[]&*!xy0")), maxLength: 3 }),
          ),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        (edits) => {
          let text = base;
          for (const [at, remove, insert] of edits) text = text.slice(0, at) + insert + text.slice(at + remove);
          return agrees(text);
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

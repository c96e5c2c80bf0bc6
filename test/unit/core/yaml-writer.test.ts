import fc from "fast-check";
import { dump } from "js-yaml";
import { describe, expect, it } from "vitest";
import { nestedValues } from "../../helpers/arbitraries.ts";
import { rawJson } from "../../../src/core/json.ts";
import { compareKeys, DISPLAY_SCHEMA, sortKeys } from "../../../src/core/normalize.ts";
import { writeBlockYaml } from "../../../src/core/yaml-writer.ts";

const OPTIONS = { compare: compareKeys, schema: DISPLAY_SCHEMA };

/** What js-yaml writes: the reference the writer must match byte for byte. */
function reference(value: unknown): string {
  return dump(sortKeys(value, compareKeys), { lineWidth: -1, noRefs: true, schema: DISPLAY_SCHEMA });
}

/** The writer gives js-yaml's text, or leaves the value to js-yaml. */
function agrees(value: unknown): boolean {
  const text = writeBlockYaml(value, OPTIONS);
  if (text !== undefined) expect(text, JSON.stringify(value)).toBe(reference(value));
  return true;
}

function written(value: unknown): string {
  const text = writeBlockYaml(value, OPTIONS);
  expect(text, `left to js-yaml: ${JSON.stringify(value)}`).toBeDefined();
  expect(text).toBe(reference(value));
  return text as string;
}

describe("writeBlockYaml", () => {
  it("writes objects as js-yaml's dump does, keys in display order", () => {
    const text = written({
      spec: {
        template: {
          spec: { containers: [{ name: "web", image: "ghcr.io/a/web:1.0@sha256:ab", args: [], env: [{ name: "A", value: "a: b" }] }] },
          metadata: { labels: { app: "web" } },
        },
        replicas: 3,
        paused: false,
        selector: {},
      },
      metadata: {
        name: "web",
        annotations: { "example.com/note": "it's #1", empty: "", yes: "yes", number: "1.5", spaces: "a  b", url: "http://a/b?c=d#e" },
      },
      kind: "Deployment",
      apiVersion: "apps/v1",
      list: [[1, [2]], { a: [[]] }, null, {}, [], -4, "-x", "- x", "?x", ":x", "x:", "é", "😀"],
      big: rawJson("12345678901234567890"),
    });
    expect(text.startsWith("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n")).toBe(true);
  });

  it("leaves to js-yaml what it writes in styles of its own", () => {
    for (const value of [
      { a: "line\nbreak" },
      { a: "tab\there" },
      { a: "   " },
      // Whitespace other than the space: js-yaml tests for /^\s+$/.
      { a: "\u2000" },
      { a: " \u3000\u205f\u1680\u202f" },
      { a: 1.5 },
      { a: -0 },
      { a: Number.NaN },
      { "10": 1, "9": 2 },
      { a: "\u00a0" },
      { ["k".repeat(1025)]: 1 },
      { a: "\ud800" },
    ]) {
      expect(writeBlockYaml(value, OPTIONS), JSON.stringify(value)).toBeUndefined();
      agrees(value);
    }
  });

  const scalar = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.string({ unit: fc.constantFrom(...Array.from("ab -:#'\"\\|>&*!?[]{},.=0189xeEyYnN+~@%`\u00e9\u00a0")), maxLength: 12 }),
    fc.string({ unit: "grapheme", maxLength: 6 }),
    fc.constantFrom(
      "null",
      "~",
      "true",
      "yes",
      "No",
      "on",
      "0x1F",
      "1e3",
      ".nan",
      ".inf",
      "-",
      "<<",
      "0o7",
      "0755",
      "1_000",
      "1:20",
      "2024-01-01",
      "---",
      "... x",
      "=",
      "a #b",
      "a# b",
      "a: b",
      "a:b",
      "-1",
      "- 1",
      "-.5",
    ),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
  );
  const key = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.constantFrom("apiVersion", "kind", "metadata", "name", "a b", "a:b", "#", "-", "?", "null", "true", "1.5", "y"),
  );
  const value = nestedValues(scalar, key, { maxKeys: 5 });

  it("writes any value exactly as js-yaml does, or leaves it to js-yaml", () => {
    fc.assert(fc.property(value, agrees), { numRuns: 3_000 });
  });
});
